from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar, BinaryIO, TextIO, TYPE_CHECKING, Generator

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..types import UNSET, Unset

from typing import cast






T = TypeVar("T", bound="Snippet")



@_attrs_define
class Snippet:
    """ The passage of a hit's text that best matches the question.

        Attributes:
            text (str): At most `max_chars` characters of the text, cut at word boundaries.
            highlights (list[list[int]]): The matched words as `[start, end)` offsets into `text`, in UTF-16
                code units (JavaScript string indexes), ascending.
     """

    text: str
    highlights: list[list[int]]
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)





    def to_dict(self) -> dict[str, Any]:
        text = self.text

        highlights = []
        for highlights_item_data in self.highlights:
            highlights_item = highlights_item_data


            highlights.append(highlights_item)




        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update({
            "text": text,
            "highlights": highlights,
        })

        return field_dict



    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        text = d.pop("text")

        highlights = []
        _highlights = d.pop("highlights")
        for highlights_item_data in (_highlights):
            highlights_item = cast(list[int], highlights_item_data)

            highlights.append(highlights_item)


        snippet = cls(
            text=text,
            highlights=highlights,
        )


        snippet.additional_properties = d
        return snippet

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
