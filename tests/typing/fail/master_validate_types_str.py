"""validate_types is a bool."""

from peepsy import Master
from tests.typing.models import AddParams, AddResult

master = Master[AddParams, AddResult](validate_types="no")  # E: arg-type
