from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar, BinaryIO, TextIO, TYPE_CHECKING, Generator

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..types import UNSET, Unset

from typing import cast

if TYPE_CHECKING:
  from ..models.id_query import IdQuery
  from ..models.text_query import TextQuery
  from ..models.vector_query import VectorQuery





T = TypeVar("T", bound="BatchRequest")



@_attrs_define
class BatchRequest:
    """ Body of `POST /v1/search/batch`: each element is a `/v1/search` body.

        Example:
            {'queries': [{'k': 2, 'vector': [0.12, -0.03, 0.51]}, {'id': 'https://example.org/a', 'k': 3}]}

        Attributes:
            queries (list[IdQuery | TextQuery | VectorQuery]): 1 to the server's SEMSEARCH_MAX_BATCH (default 256) queries,
                else 422 `invalid_batch_size`.
     """

    queries: list[IdQuery | TextQuery | VectorQuery]





    def to_dict(self) -> dict[str, Any]:
        from ..models.id_query import IdQuery # noqa: PLC0415
        from ..models.text_query import TextQuery # noqa: PLC0415
        from ..models.vector_query import VectorQuery # noqa: PLC0415
        queries = []
        for queries_item_data in self.queries:
            queries_item: dict[str, Any]
            if isinstance(queries_item_data, VectorQuery):
                queries_item = queries_item_data.to_dict()
            elif isinstance(queries_item_data, TextQuery):
                queries_item = queries_item_data.to_dict()
            else:
                queries_item = queries_item_data.to_dict()

            queries.append(queries_item)




        field_dict: dict[str, Any] = {}

        field_dict.update({
            "queries": queries,
        })

        return field_dict



    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        from ..models.id_query import IdQuery # noqa: PLC0415
        from ..models.text_query import TextQuery # noqa: PLC0415
        from ..models.vector_query import VectorQuery # noqa: PLC0415
        d = dict(src_dict)
        queries = []
        _queries = d.pop("queries")
        for queries_item_data in (_queries):
            def _parse_queries_item(data: object) -> IdQuery | TextQuery | VectorQuery:
                try:
                    if not isinstance(data, dict):
                        raise TypeError()
                    componentsschemas_search_request_type_0 = VectorQuery.from_dict(data)



                    return componentsschemas_search_request_type_0
                except (TypeError, ValueError, AttributeError, KeyError):
                    pass
                try:
                    if not isinstance(data, dict):
                        raise TypeError()
                    componentsschemas_search_request_type_1 = TextQuery.from_dict(data)



                    return componentsschemas_search_request_type_1
                except (TypeError, ValueError, AttributeError, KeyError):
                    pass
                if not isinstance(data, dict):
                    raise TypeError()
                componentsschemas_search_request_type_2 = IdQuery.from_dict(data)



                return componentsschemas_search_request_type_2

            queries_item = _parse_queries_item(queries_item_data)

            queries.append(queries_item)


        batch_request = cls(
            queries=queries,
        )

        return batch_request

