"""The one exception type for an invalid spec or an invalid request made against a spec."""


class SpecError(ValueError):
    """An invalid spec field or run parameter.

    The message is one line naming the field (its TOML path), the value and what is allowed,
    e.g. ``compute.man_bits = 40: expected an integer in 1..23``.
    """

    def __init__(self, path: str, value: object, expected: str) -> None:
        self.path = path
        self.value = value
        self.expected = expected
        super().__init__(f"{path} = {value!r}: expected {expected}")
