from peepsy import Child

child = Child("sequential")


@child.handler("add")
def add(data: dict[str, int]) -> int:
    return data["a"] + data["b"]


if __name__ == "__main__":
    child.run()
