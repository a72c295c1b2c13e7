"""The trace of one lookup, for `find --explain`: a list of Step records, each made where
the decision is taken, which the CLI only formats."""

class Step:
    """One line of a lookup's trace (`find --explain`): which *source* looked at which
    *subject* (a path, a key, a name) and with what *outcome*.

    Outcomes: "taken" (the answer), "candidate", "superseded", "skipped", "none"
    (the source had nothing), "unusable" (the source could not be read), "rejected"
    (not a library name), "loaded" (the interpreter's own copy CDLL loads instead of the
    file the answer names), "error".
    """

    __slots__ = ("detail", "flags", "key", "outcome", "source", "subject")

    def __init__(self, source: str, subject: str, outcome: str, detail: str = "", *,
                 key: "str | None" = None, flags: "int | None" = None) -> None:
        self.source = source
        self.subject = subject
        self.outcome = outcome
        self.detail = detail
        self.key = key  # the cache key (soname) concerned, if any
        self.flags = flags  # and its cache flags

    @property
    def verdict(self) -> str:
        return f"{self.outcome}: {self.detail}" if self.detail else self.outcome

    def __repr__(self) -> str:
        return f"Step({self.source!r}, {self.subject!r}, {self.outcome!r}, {self.detail!r})"
