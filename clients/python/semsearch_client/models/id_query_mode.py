from enum import StrEnum

class IdQueryMode(StrEnum):
    VECTOR = "vector"

    def __str__(self) -> str:
        return str(self.value)
