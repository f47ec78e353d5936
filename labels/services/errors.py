"""What the label services refuse, with a message fit to show the person who asked."""


class LabelError(Exception):
    """A request refused with a message fit to show the person who made it."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message
