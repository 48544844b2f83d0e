"""The 29 languages of the Qwen2 report, in its order: what a job keeps by default (`languages: qwen29`)."""

QWEN29 = (
    "en",
    "zh",
    "de",
    "fr",
    "es",
    "pt",
    "it",
    "nl",
    "ru",
    "cs",
    "pl",
    "ar",
    "fa",
    "he",
    "tr",
    "ja",
    "ko",
    "vi",
    "th",
    "id",
    "ms",
    "lo",
    "my",
    "ceb",
    "km",
    "tl",
    "hi",
    "bn",
    "ur",
)

# ISO 639-3 codes (as GlotLID-style models label text: `__label__zsm_Latn`) -> the codes jobs use (ISO 639-1
# where one exists, as lid.176 and `languages:` name them). Individual languages of a macrolanguage map to it
# where the Qwen2 list means the standard form (zsm Standard Malay -> ms, cmn Mandarin -> zh, arb Standard
# Arabic -> ar, pes Iranian Persian -> fa); other varieties keep their own code (yue, arz, prs, ...), so a
# job names them explicitly if it wants them. Codes not listed here pass through unchanged.
ISO639_3_TO_JOB = {
    "eng": "en", "cmn": "zh", "zho": "zh", "deu": "de", "fra": "fr", "spa": "es", "por": "pt", "ita": "it",
    "nld": "nl", "rus": "ru", "ces": "cs", "pol": "pl", "arb": "ar", "ara": "ar", "pes": "fa", "fas": "fa",
    "heb": "he", "tur": "tr", "jpn": "ja", "kor": "ko", "vie": "vi", "tha": "th", "ind": "id", "zsm": "ms",
    "msa": "ms", "lao": "lo", "mya": "my", "ceb": "ceb", "khm": "km", "tgl": "tl", "fil": "tl", "hin": "hi",
    "ben": "bn", "urd": "ur",
}  # fmt: skip


def split_label(label: str) -> tuple[str, str | None]:
    """A model label without `__label__` -> (the job's language code, the script or None):
    `zsm_Latn` -> ("ms", "Latn"), `cmn_Hani` -> ("zh", "Hani"), `en` -> ("en", None)."""
    code, sep, script = label.partition("_")
    if sep and len(script) == 4 and script[:1].isupper() and len(code) == 3:
        return ISO639_3_TO_JOB.get(code, code), script
    return label, None
