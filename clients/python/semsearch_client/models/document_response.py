from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar, BinaryIO, TextIO, TYPE_CHECKING, Generator

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..types import UNSET, Unset

from ..types import UNSET, Unset
from typing import cast
import datetime






T = TypeVar("T", bound="DocumentResponse")



@_attrs_define
class DocumentResponse:
    """ One document as the index holds it.

        Attributes:
            id (str):
            url (str):
            title (None | str): Always present: null when the stored value has no title.
            text (None | str): Always present: null when the stored value has no text.
            index_version (int):
            expires_at (datetime.datetime | Unset): When Redis expires the key (RFC 3339, UTC, conservatively early);
                absent (never null) for keys without a TTL.
            embedding (list[float] | Unset): The document's row in the index: the stored embedding scaled to unit
                length at load, so it is the vector searches score against, not the
                bytes in Redis (same direction, possibly another length). Only with
                `?with_embedding=true` (absent otherwise, never null).
     """

    id: str
    url: str
    title: None | str
    text: None | str
    index_version: int
    expires_at: datetime.datetime | Unset = UNSET
    embedding: list[float] | Unset = UNSET
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)





    def to_dict(self) -> dict[str, Any]:
        id = self.id

        url = self.url

        title: None | str
        title = self.title

        text: None | str
        text = self.text

        index_version = self.index_version

        expires_at: str | Unset = UNSET
        if not isinstance(self.expires_at, Unset):
            expires_at = self.expires_at.isoformat()

        embedding: list[float] | Unset = UNSET
        if not isinstance(self.embedding, Unset):
            embedding = self.embedding




        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update({
            "id": id,
            "url": url,
            "title": title,
            "text": text,
            "index_version": index_version,
        })
        if expires_at is not UNSET:
            field_dict["expires_at"] = expires_at
        if embedding is not UNSET:
            field_dict["embedding"] = embedding

        return field_dict



    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        id = d.pop("id")

        url = d.pop("url")

        def _parse_title(data: object) -> None | str:
            if data is None:
                return data
            return cast(None | str, data)

        title = _parse_title(d.pop("title"))


        def _parse_text(data: object) -> None | str:
            if data is None:
                return data
            return cast(None | str, data)

        text = _parse_text(d.pop("text"))


        index_version = d.pop("index_version")

        _expires_at = d.pop("expires_at", UNSET)
        expires_at: datetime.datetime | Unset
        if isinstance(_expires_at,  Unset):
            expires_at = UNSET
        else:
            expires_at = datetime.datetime.fromisoformat(_expires_at)




        embedding = cast(list[float], d.pop("embedding", UNSET))


        document_response = cls(
            id=id,
            url=url,
            title=title,
            text=text,
            index_version=index_version,
            expires_at=expires_at,
            embedding=embedding,
        )


        document_response.additional_properties = d
        return document_response

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
