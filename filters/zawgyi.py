"""Legacy Zawgyi-encoded Burmese: detection, and conversion to Unicode.

Zawgyi is a font encoding that reuses the Myanmar Unicode block (U+1000..U+109F) with different
meanings (visual order, glyph variants on code points Unicode gives other letters). Much Burmese web
text is still written in it. lid.176 labels it `my` with a high score (0.997 on the UDHR articles
re-encoded to Zawgyi) and the script check passes it, so without this step it would enter the corpus
as byte sequences no Unicode-conformant reader or tokenizer interprets as the intended words.

Detection: Google's `myanmartools` (Apache-2.0; PyPI `myanmartools`), the detector Android and
Facebook use. Its Markov model over Myanmar code-point pairs ships inside the wheel
(`myanmartools/resources/zawgyiUnicodeModel.dat`), so nothing is downloaded at run time. A text is
Zawgyi when the model's probability is at least `ZAWGYI_THRESHOLD` (0.95, the cut-off the
myanmar-tools documentation suggests); texts without Myanmar characters get -inf and are never flagged.
On the 31 primary-variant Unicode UDHR articles in Burmese it returns 0.0 for every one, and 1.0 for
every one of their Zawgyi re-encodings.

Conversion: `python-myanmar` (MIT; PyPI `python-myanmar`, module `myanmar.converter`), a rule-based
syllable converter with its tables inside the package (offline), in both directions. Unicode UDHR
Burmese -> Zawgyi -> Unicode gives back 28 of the 31 articles exactly; the 3 others differ in one
character each (tall/short AA after a stacked consonant, one medial WA), ambiguities of Zawgyi itself.
The converted text replaces the original; no column records the conversion (lang stays `my`).

Policy (`stages.langid.zawgyi`): `convert` (default when the converter imports), `drop` (reason
`langid:zawgyi`; the default when it does not), or `keep` (leave the text as it is). Only documents
labelled `my` are examined.
"""

from __future__ import annotations

import warnings
from functools import lru_cache
from typing import Literal

ZAWGYI_THRESHOLD = 0.95


@lru_cache(maxsize=1)
def _detector():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # importlib.resources.open_binary on 3.11/3.12
        from myanmartools import ZawgyiDetector

        return ZawgyiDetector()


def zawgyi_probability(text: str) -> float:
    """myanmartools' probability that `text` is Zawgyi (-inf when it has no Myanmar characters)."""
    return _detector().get_zawgyi_probability(text)


def is_zawgyi(text: str, threshold: float = ZAWGYI_THRESHOLD) -> bool:
    return zawgyi_probability(text) >= threshold


def converter_available() -> bool:
    try:
        import myanmar.converter  # noqa: F401
    except ImportError:
        return False
    return True


def zawgyi_to_unicode(text: str) -> str:
    from myanmar.converter import convert

    return convert(text, "zawgyi", "unicode")


def unicode_to_zawgyi(text: str) -> str:
    """The reverse direction (tests build Zawgyi samples from real Unicode Burmese with it)."""
    from myanmar.converter import convert

    return convert(text, "unicode", "zawgyi")


def default_policy() -> Literal["convert", "drop"]:
    return "convert" if converter_available() else "drop"
