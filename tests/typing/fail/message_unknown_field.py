"""The generated message models take only their fields (init_forbid_extra)."""

from peepsy.protocol import Response

response = Response(type="RESPONSE", id="1", status=200, statusText="OK")  # E: call-arg
