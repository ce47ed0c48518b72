from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar, BinaryIO, TextIO, TYPE_CHECKING, Generator

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..types import UNSET, Unset

from ..models.feed_state import FeedState
from ..models.ready_status import ReadyStatus






T = TypeVar("T", bound="Ready")



@_attrs_define
class Ready:
    """ Readiness answer.

        Attributes:
            status (ReadyStatus): Whether the index answering `/readyz` mirrors Redis.
            index_version (int):
            documents (int):
            redis_empty (bool): Redis holds no embeddings; answers come from the last index loaded.
            change_feed (FeedState): Where the change feed stands: `tracking` when Redis pushes changes as they
                happen; otherwise only the periodic reconcile notices them.
     """

    status: ReadyStatus
    index_version: int
    documents: int
    redis_empty: bool
    change_feed: FeedState
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)





    def to_dict(self) -> dict[str, Any]:
        status = self.status.value

        index_version = self.index_version

        documents = self.documents

        redis_empty = self.redis_empty

        change_feed = self.change_feed.value


        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update({
            "status": status,
            "index_version": index_version,
            "documents": documents,
            "redis_empty": redis_empty,
            "change_feed": change_feed,
        })

        return field_dict



    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        status = ReadyStatus(d.pop("status"))




        index_version = d.pop("index_version")

        documents = d.pop("documents")

        redis_empty = d.pop("redis_empty")

        change_feed = FeedState(d.pop("change_feed"))




        ready = cls(
            status=status,
            index_version=index_version,
            documents=documents,
            redis_empty=redis_empty,
            change_feed=change_feed,
        )


        ready.additional_properties = d
        return ready

    @property
    def additional_keys(self) -> list[str]:
        return list(self.additional_properties.keys())

    def __getitem__(self, key: str) -> Any:
        return self.additional_properties[key]

    def __setitem__(self, key: str, value: Any) -> None:
        self.additional_properties[key] = value

    def __delitem__(self, key: str) -> None:
        del self.additional_properties[key]

    def __contains__(self, key: str) -> bool:
        return key in self.additional_properties
