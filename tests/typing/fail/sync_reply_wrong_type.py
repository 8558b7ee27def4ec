"""peepsy.sync.Master[int, str] types replies as the async master does: data is a str."""

import peepsy.sync


def main(master: peepsy.sync.Master[int, str]) -> int:
    return master.request("describe", "w1", 1).data  # E: return-value
