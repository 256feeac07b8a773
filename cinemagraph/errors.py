"""The error type for problems the user can fix (bad input, missing files, wrong options)."""


class UserError(Exception):
    """A problem with the user's input or environment, reported as one line without a traceback.

    The message names the problem and the fix.
    """
