from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar, BinaryIO, TextIO, TYPE_CHECKING, Generator

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..types import UNSET, Unset

from ..types import UNSET, Unset
from typing import cast

if TYPE_CHECKING:
  from ..models.search_filter_fields_type_0 import SearchFilterFieldsType0





T = TypeVar("T", bound="SearchFilter")



@_attrs_define
class SearchFilter:
    """ Search only the documents matching every condition; the answer is the exact top-k among them (same tie rule).
    Attributes are the stored value's extra string, number and boolean fields (all but `embedding`, `text`, `title`,
    `url`), at most 32 per document. 422 `unknown_filter_field` for a field no document has, `filter_type_mismatch` for
    a value of a type the field never holds, `invalid_filter` for any other wrong shape.

        Attributes:
            url_prefix (None | str | Unset): Keep documents whose url starts with this (byte-wise).
            fields (None | SearchFilterFieldsType0 | Unset): Attribute name → value or list of values. Numbers compare as
                64-bit floats (1 equals 1.0).
     """

    url_prefix: None | str | Unset = UNSET
    fields: None | SearchFilterFieldsType0 | Unset = UNSET





    def to_dict(self) -> dict[str, Any]:
        from ..models.search_filter_fields_type_0 import SearchFilterFieldsType0 # noqa: PLC0415
        url_prefix: None | str | Unset
        if isinstance(self.url_prefix, Unset):
            url_prefix = UNSET
        else:
            url_prefix = self.url_prefix

        fields: dict[str, Any] | None | Unset
        if isinstance(self.fields, Unset):
            fields = UNSET
        elif isinstance(self.fields, SearchFilterFieldsType0):
            fields = self.fields.to_dict()
        else:
            fields = self.fields


        field_dict: dict[str, Any] = {}

        field_dict.update({
        })
        if url_prefix is not UNSET:
            field_dict["url_prefix"] = url_prefix
        if fields is not UNSET:
            field_dict["fields"] = fields

        return field_dict



    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        from ..models.search_filter_fields_type_0 import SearchFilterFieldsType0 # noqa: PLC0415
        d = dict(src_dict)
        def _parse_url_prefix(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        url_prefix = _parse_url_prefix(d.pop("url_prefix", UNSET))


        def _parse_fields(data: object) -> None | SearchFilterFieldsType0 | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            try:
                if not isinstance(data, dict):
                    raise TypeError()
                fields_type_0 = SearchFilterFieldsType0.from_dict(data)



                return fields_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(None | SearchFilterFieldsType0 | Unset, data)

        fields = _parse_fields(d.pop("fields", UNSET))


        search_filter = cls(
            url_prefix=url_prefix,
            fields=fields,
        )

        return search_filter

