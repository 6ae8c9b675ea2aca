"""The error raised for bad corpus input."""


class CorpusError(ValueError):
  """A corpus file or directory is missing, malformed or inconsistent.

  The message names the file (or directory) and the problem.
  """
