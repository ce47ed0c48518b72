from enum import StrEnum

class FeedState(StrEnum):
    CONNECTING = "connecting"
    RECONNECTING = "reconnecting"
    TRACKING = "tracking"
    UNAVAILABLE = "unavailable"

    def __str__(self) -> str:
        return str(self.value)
