"""The 29 languages of the Qwen2 report, in its order: what a job keeps by default (`languages: qwen29`)."""

QWEN29 = ("en", "zh", "de", "fr", "es", "pt", "it", "nl", "ru", "cs", "pl", "ar", "fa", "he", "tr", "ja", "ko", "vi",
          "th", "id", "ms", "lo", "my", "ceb", "km", "tl", "hi", "bn", "ur")
