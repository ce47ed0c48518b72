from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar, BinaryIO, TextIO, TYPE_CHECKING, Generator

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..types import UNSET, Unset







T = TypeVar("T", bound="SnippetOptions")



@_attrs_define
class SnippetOptions:
    """ `snippet` of a search.

        Attributes:
            max_chars (int): The snippet's length limit, in characters (Unicode scalar values), 1 to 10000.
     """

    max_chars: int





    def to_dict(self) -> dict[str, Any]:
        max_chars = self.max_chars


        field_dict: dict[str, Any] = {}

        field_dict.update({
            "max_chars": max_chars,
        })

        return field_dict



    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        max_chars = d.pop("max_chars")

        snippet_options = cls(
            max_chars=max_chars,
        )

        return snippet_options

