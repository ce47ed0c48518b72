from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar, BinaryIO, TextIO, TYPE_CHECKING, Generator

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..types import UNSET, Unset

from ..types import UNSET, Unset
from typing import cast

if TYPE_CHECKING:
  from ..models.snippet import Snippet





T = TypeVar("T", bound="SearchResult")



@_attrs_define
class SearchResult:
    """ One article. Results are ordered by descending score; equal scores by
    ascending `id` (byte-wise), the tie rule of `src/search/topk.rs`.

        Attributes:
            id (str): The embedding's Redis key without its prefix (for the chatbot, the article URL).
            url (str):
            title (None | str): Always present: null when the stored value has no title.
            score (float): What the results are ordered by: in `vector` mode the cosine
                similarity, in [-1, 1]; in `lexical` mode the BM25F score (≥ 0); in
                `hybrid` mode the fused score (at most 1, the best possible;
                comparable only between results of one question).
            text (None | str | Unset): Present exactly when the request asked for texts (`with_text`, the
                default): the article text, or null when the stored value has none.
                Absent with `with_text: false`.
            vector_score (float | Unset): `hybrid` mode: the cosine similarity. Absent otherwise.
            lexical_score (float | Unset): `hybrid` and `lexical` modes: the BM25F score (0 when no word of the
                question is in the document). Absent otherwise.
            snippet (Snippet | Unset): The passage of a hit's text that best matches the question.
     """

    id: str
    url: str
    title: None | str
    score: float
    text: None | str | Unset = UNSET
    vector_score: float | Unset = UNSET
    lexical_score: float | Unset = UNSET
    snippet: Snippet | Unset = UNSET
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)





    def to_dict(self) -> dict[str, Any]:
        from ..models.snippet import Snippet # noqa: PLC0415
        id = self.id

        url = self.url

        title: None | str
        title = self.title

        score = self.score

        text: None | str | Unset
        if isinstance(self.text, Unset):
            text = UNSET
        else:
            text = self.text

        vector_score = self.vector_score

        lexical_score = self.lexical_score

        snippet: dict[str, Any] | Unset = UNSET
        if not isinstance(self.snippet, Unset):
            snippet = self.snippet.to_dict()


        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update({
            "id": id,
            "url": url,
            "title": title,
            "score": score,
        })
        if text is not UNSET:
            field_dict["text"] = text
        if vector_score is not UNSET:
            field_dict["vector_score"] = vector_score
        if lexical_score is not UNSET:
            field_dict["lexical_score"] = lexical_score
        if snippet is not UNSET:
            field_dict["snippet"] = snippet

        return field_dict



    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        from ..models.snippet import Snippet # noqa: PLC0415
        d = dict(src_dict)
        id = d.pop("id")

        url = d.pop("url")

        def _parse_title(data: object) -> None | str:
            if data is None:
                return data
            return cast(None | str, data)

        title = _parse_title(d.pop("title"))


        score = d.pop("score")

        def _parse_text(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        text = _parse_text(d.pop("text", UNSET))


        vector_score = d.pop("vector_score", UNSET)

        lexical_score = d.pop("lexical_score", UNSET)

        _snippet = d.pop("snippet", UNSET)
        snippet: Snippet | Unset
        if isinstance(_snippet,  Unset):
            snippet = UNSET
        else:
            snippet = Snippet.from_dict(_snippet)




        search_result = cls(
            id=id,
            url=url,
            title=title,
            score=score,
            text=text,
            vector_score=vector_score,
            lexical_score=lexical_score,
            snippet=snippet,
        )


        search_result.additional_properties = d
        return search_result

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
