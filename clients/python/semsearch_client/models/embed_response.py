from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar, BinaryIO, TextIO, TYPE_CHECKING, Generator

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..types import UNSET, Unset

from typing import cast






T = TypeVar("T", bound="EmbedResponse")



@_attrs_define
class EmbedResponse:
    """ Answer of `POST /v1/embed`.

        Attributes:
            embeddings (list[list[float]]): One unit-length vector per text, in request order.
            model (str): The model that embedded them, e.g. `all-MiniLM-L6-v2`.
            dimension (int):
            truncated (list[bool]): Per text, whether it was cut at 256 word pieces.
     """

    embeddings: list[list[float]]
    model: str
    dimension: int
    truncated: list[bool]
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)





    def to_dict(self) -> dict[str, Any]:
        embeddings = []
        for embeddings_item_data in self.embeddings:
            embeddings_item = embeddings_item_data


            embeddings.append(embeddings_item)



        model = self.model

        dimension = self.dimension

        truncated = self.truncated




        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update({
            "embeddings": embeddings,
            "model": model,
            "dimension": dimension,
            "truncated": truncated,
        })

        return field_dict



    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        embeddings = []
        _embeddings = d.pop("embeddings")
        for embeddings_item_data in (_embeddings):
            embeddings_item = cast(list[float], embeddings_item_data)

            embeddings.append(embeddings_item)


        model = d.pop("model")

        dimension = d.pop("dimension")

        truncated = cast(list[bool], d.pop("truncated"))


        embed_response = cls(
            embeddings=embeddings,
            model=model,
            dimension=dimension,
            truncated=truncated,
        )


        embed_response.additional_properties = d
        return embed_response

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
