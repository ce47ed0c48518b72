from enum import StrEnum

class VectorQueryMode(StrEnum):
    VECTOR = "vector"

    def __str__(self) -> str:
        return str(self.value)
