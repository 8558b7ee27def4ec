"""A misspelt attribute of the peepsy module is an error too."""

import peepsy

error = peepsy.RemoteErorr  # E: attr-defined
