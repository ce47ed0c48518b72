from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar, BinaryIO, TextIO, TYPE_CHECKING, Generator

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..types import UNSET, Unset

from ..models.normalization import Normalization
from ..types import UNSET, Unset
from typing import cast






T = TypeVar("T", bound="EmbedRequest")



@_attrs_define
class EmbedRequest:
    """ Body of `POST /v1/embed`: texts to embed with the server's embedder, as
    the article-embedding script would (the same model as the index).

        Example:
            {'normalization': 'none', 'texts': ['how do I download a file from the command line']}

        Attributes:
            texts (list[str]): 1 to SEMSEARCH_MAX_BATCH (default 256) texts, each at most 64 KiB of UTF-8 (16384 characters
                always fit); longer than 256 word pieces is truncated as sentence-transformers does (`truncated`).
            normalization (None | Normalization | Unset):
     """

    texts: list[str]
    normalization: None | Normalization | Unset = UNSET





    def to_dict(self) -> dict[str, Any]:
        texts = self.texts



        normalization: None | str | Unset
        if isinstance(self.normalization, Unset):
            normalization = UNSET
        elif isinstance(self.normalization, Normalization):
            normalization = self.normalization.value
        else:
            normalization = self.normalization


        field_dict: dict[str, Any] = {}

        field_dict.update({
            "texts": texts,
        })
        if normalization is not UNSET:
            field_dict["normalization"] = normalization

        return field_dict



    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        texts = cast(list[str], d.pop("texts"))


        def _parse_normalization(data: object) -> None | Normalization | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            try:
                if not isinstance(data, str):
                    raise TypeError()
                normalization_type_0 = Normalization(data)



                return normalization_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(None | Normalization | Unset, data)

        normalization = _parse_normalization(d.pop("normalization", UNSET))


        embed_request = cls(
            texts=texts,
            normalization=normalization,
        )

        return embed_request

