"""Instruction and chat records rendered to one text, so they curate and mix like any document.

The Qwen2 report mixes multi-task instruction data into pretraining. A record is either a chat (a list
of `{role, content}` messages under `messages_field`) or a prompt/response pair (`prompt_field`,
`response_field`, an optional `system_field`). Each turn is rendered with the template of its role;
the default is ChatML, Qwen's chat format. Its markers are ordinary text to the token counter
(`encode_ordinary`), so a mixture's counts never contain special tokens a document smuggled in.
"""

from __future__ import annotations

import string
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

CHATML = "<|im_start|>{role}\n{content}<|im_end|>\n"


class InstructionSpec(BaseModel):
    """How an input's records become text (input `instruction:`); such inputs default to domain
    `instruction`, which mixtures weight, cap and decontaminate as a bucket of its own."""

    model_config = ConfigDict(extra="forbid")
    messages_field: str = Field("messages", description="a list of {role, content} turns")
    prompt_field: str = Field("prompt", description="used when the record has no messages_field")
    response_field: str = Field("response", description="the answer of a prompt/response record")
    system_field: str | None = Field("system", description="optional system turn of a prompt/response record")
    template: str = Field(CHATML, description="one turn; {role} and {content} are filled in")
    roles: dict[str, str] = Field(default_factory=dict, description="rename roles, e.g. {human: user, gpt: assistant}")

    @field_validator("template")
    @classmethod
    def _plain_fields(cls, v: str) -> str:
        # Only {role} and {content}: str.format would otherwise reach attributes of the values
        # ({content.__class__...}), which a spec from a user of the service must not do.
        for _, field, spec, conv in string.Formatter().parse(v):
            if field is not None and (field not in ("role", "content") or spec or conv):
                raise ValueError(f"template: only {{role}} and {{content}} may be filled in, not {{{field}}}")
        return v

    def render(self, record: dict[str, Any]) -> tuple[str | None, str | None]:
        """(text, None) or (None, why the record cannot be rendered)."""
        turns: list[tuple[str, Any]] = []
        messages = record.get(self.messages_field)
        if messages is not None:
            if not isinstance(messages, list) or not messages:
                return None, f"{self.messages_field!r} is not a non-empty list of turns"
            for i, m in enumerate(messages):
                if not isinstance(m, dict):
                    return None, f"{self.messages_field}[{i}] is {type(m).__name__}, not an object"
                role = m.get("role", m.get("from"))
                content = m.get("content", m.get("value"))
                if not isinstance(role, str) or not isinstance(content, str):
                    return None, f"{self.messages_field}[{i}] lacks a string role and content"
                turns.append((role, content))
        else:
            prompt, response = record.get(self.prompt_field), record.get(self.response_field)
            if not isinstance(prompt, str) or not isinstance(response, str):
                return None, (
                    f"no {self.messages_field!r} list and no string {self.prompt_field!r} and "
                    f"{self.response_field!r} fields"
                )
            system = record.get(self.system_field) if self.system_field else None
            if isinstance(system, str) and system:
                turns.append(("system", system))
            turns += [("user", prompt), ("assistant", response)]
        return "".join(self.template.format(role=self.roles.get(r, r), content=c) for r, c in turns), None
