"""peepsy.sync.Master[int, str].map takes items of the request type."""

import peepsy.sync


def main(master: peepsy.sync.Master[int, str]) -> None:
    for reply in master.map("describe", "w1", ["one", "two"]):  # E: list-item, list-item
        print(reply.data)
