"""The one error type services raise for bad input: it names the field and the problem."""

from __future__ import annotations


class FieldError(ValueError):
    """Bad input in one field. `field` is a dotted path ("traits.email", "batch[3].messageId")."""

    def __init__(self, field: str | None, message: str, code: str = "invalid"):
        super().__init__(f"{field}: {message}" if field else message)
        self.field = field
        self.message = message
        self.code = code

    def under(self, prefix: str) -> FieldError:
        """The same error with its field placed under `prefix`."""
        field = f"{prefix}.{self.field}" if self.field and not self.field.startswith("[") else (
            f"{prefix}{self.field}" if self.field else prefix
        )
        return FieldError(field, self.message, self.code)


class NotFound(LookupError):
    def __init__(self, what: str, key: object):
        super().__init__(f"{what} {key} does not exist")
        self.what = what
        self.key = key


def dotted(loc: tuple | list) -> str | None:
    """A validation error's location as a dotted path: ("batch", 3, "traits", "email") -> "batch[3].traits.email"."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or None
