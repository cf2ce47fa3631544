"""Why a policy refused: the three cases of the contract's `policy-error`."""

from __future__ import annotations


class Error(Exception):
    """A refusal the gateway understands. Raise one of the subclasses (or build
    it with `Error.bad_request(...)` etc.): the SDK hands it to the gateway as
    the contract's `policy-error`. Any other exception becomes `Internal`, with
    its traceback in the gateway's log.

    `str(error)` reads as the Rust SDK's `Display`: "bad request: ...".
    """

    #: The contract's name of the case, as `str()` says it.
    kind: str = "internal"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    @staticmethod
    def bad_request(message: str) -> BadRequest:
        """A request this policy cannot serve."""
        return BadRequest(message)

    @staticmethod
    def bad_config(message: str) -> BadConfig:
        """A setting of the domain that is missing or out of range."""
        return BadConfig(message)

    @staticmethod
    def internal(message: str) -> Internal:
        """A failure that is neither the client's nor the configuration's."""
        return Internal(message)

    def __str__(self) -> str:
        return f"{self.kind}: {self.message}"

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r})"

    # Errors compare by case and message, so a test can `assert err == BadRequest("...")`.
    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, Error)
            and other.kind == self.kind
            and other.message == self.message
        )

    def __hash__(self) -> int:
        return hash((self.kind, self.message))


class BadRequest(Error):
    """The request does not make sense for this policy; the client gets a 400
    with this message, so say what to send instead."""

    kind = "bad request"


class BadConfig(Error):
    """The domain's settings are wrong: the domain is refused at load."""

    kind = "bad config"


class Internal(Error):
    """Anything else; the client gets a 500 naming the plugin."""

    kind = "internal"
