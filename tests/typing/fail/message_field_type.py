"""The generated message models are typed: the pydantic mypy plugin (init_typed) checks
their constructors, so a status written as a string is an error."""

from peepsy.protocol import Response

response = Response(type="RESPONSE", id="1", status="200")  # E: arg-type
