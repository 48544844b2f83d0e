"""Prompt templates for synthesis tasks, and what each task's outputs may look like.

The built-in tasks follow the kinds of synthetic data of Nemotron-CC (rephrasing low-quality web text in
an encyclopedic style; question-answer pairs, distillation, knowledge lists and knowledge extraction from
high-quality text) and Qwen2's use of models to write better pretraining text. The wording is ours. Each
template is versioned by its name, its `version` and a hash of its text, so an edited template never
reuses generations made with the old one. Every template asks for the source's language by name.

Each built-in template also sets the checks that suit its task: a rephrase is about as long as its
source and shares few long n-grams with it; an extraction may copy much of it; a knowledge list is short.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

# Names the prompts use for the source language (the 29 Qwen2 languages; others are written as their code).
LANGUAGE_NAMES = {
    "en": "English",
    "zh": "Chinese",
    "de": "German",
    "fr": "French",
    "es": "Spanish",
    "pt": "Portuguese",
    "it": "Italian",
    "nl": "Dutch",
    "ru": "Russian",
    "cs": "Czech",
    "pl": "Polish",
    "ar": "Arabic",
    "fa": "Persian",
    "he": "Hebrew",
    "tr": "Turkish",
    "ja": "Japanese",
    "ko": "Korean",
    "vi": "Vietnamese",
    "th": "Thai",
    "id": "Indonesian",
    "ms": "Malay",
    "lo": "Lao",
    "my": "Burmese",
    "ceb": "Cebuano",
    "km": "Khmer",
    "tl": "Tagalog",
    "hi": "Hindi",
    "bn": "Bengali",
    "ur": "Urdu",
}

_SYSTEM = "You are a careful writer who rewrites documents into high-quality text for teaching and reference."


@dataclass(frozen=True)
class Template:
    name: str
    user: str
    system: str | None = None
    version: str = "1"
    # default checks for the task (ChecksSpec values of None fall back to these)
    min_length_ratio: float = 0.0
    max_length_ratio: float = 3.0
    max_copy_share: float = 0.5

    @property
    def version_id(self) -> str:
        """name@version:hash of the text: what outputs record and what keys the ledger."""
        h = hashlib.sha256(f"{self.system or ''}\x00{self.user}".encode()).hexdigest()[:10]
        return f"{self.name}@{self.version}:{h}"

    def messages(self, text: str, lang: str | None) -> list[dict[str, str]]:
        language = LANGUAGE_NAMES.get(lang or "", lang or "the language of the text")
        user = self.user.replace("{language}", language).replace("{text}", text)
        out = [{"role": "system", "content": self.system}] if self.system else []
        return out + [{"role": "user", "content": user}]

    def instructions(self) -> str:
        """The template's own words (the document left out): an output containing them leaked the prompt."""
        return "\n".join(x for x in (self.system, self.user.replace("{text}", "\n")) if x)


BUILTIN: dict[str, Template] = {
    t.name: t
    for t in (
        Template(
            "wikipedia",
            "Rewrite the text below in the style of an encyclopedia article written in {language}: neutral in "
            "tone, clearly structured, in complete sentences. Keep all of its facts and add none, and leave out "
            "advertising, navigation, dates of posting and other boilerplate. Reply with the rewritten article "
            "only, without a title line or any comment of your own.\n\nText:\n{text}",
            _SYSTEM,
            min_length_ratio=0.2,
            max_length_ratio=2.0,
            max_copy_share=0.5,
        ),
        Template(
            "qa",
            "Read the text below and write several question-and-answer pairs in {language} that a student "
            "could answer from it, covering its most important content. Put each question on a line starting "
            'with "Question:" and its answer on the next line starting with "Answer:". Reply with the pairs '
            "only.\n\nText:\n{text}",
            _SYSTEM,
            min_length_ratio=0.1,
            max_length_ratio=2.0,
            max_copy_share=0.6,
        ),
        Template(
            "distill",
            "Rewrite the text below in {language} as a shorter passage that keeps every important fact, "
            "definition and argument and drops repetition and filler. Use plain, precise language. Reply with "
            "the passage only.\n\nText:\n{text}",
            _SYSTEM,
            min_length_ratio=0.1,
            max_length_ratio=1.2,
            max_copy_share=0.5,
        ),
        Template(
            "knowledge_list",
            "List the pieces of knowledge the text below contains (facts, definitions, figures, relations "
            'between things), in {language}, one per line, each line starting with "- " and understandable on '
            "its own. Reply with the list only.\n\nText:\n{text}",
            _SYSTEM,
            min_length_ratio=0.05,
            max_length_ratio=1.5,
            max_copy_share=0.6,
        ),
        Template(
            "extract",
            "Rewrite the text below in {language} keeping only the passages that carry knowledge, in their "
            "original order, and removing everything else (greetings, advertising, navigation, unrelated "
            "chatter). Reply with the result only.\n\nText:\n{text}",
            _SYSTEM,
            min_length_ratio=0.05,
            max_length_ratio=1.1,
            max_copy_share=0.95,
        ),
    )
}


def resolve(template: "str | Any", task: str) -> Template:
    """The Template of a task spec's `template` (a built-in name or a TemplateSpec)."""
    if isinstance(template, str):
        return BUILTIN[template]
    return Template(task, template.user, template.system, template.version)
