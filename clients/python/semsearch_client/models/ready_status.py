from enum import StrEnum

class ReadyStatus(StrEnum):
    READY = "ready"
    READY_SERVING_LAST_INDEX = "ready_serving_last_index"

    def __str__(self) -> str:
        return str(self.value)
