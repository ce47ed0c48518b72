"""Drives a live semsearch through the Python client generated from openapi.yaml.

Run by .ci/python-client.sh, which pip-installs the committed client
(clients/python, package `semsearch_client`) into a fresh venv after checking
it against a fresh generation, and sets SEMSEARCH_URL, SEMSEARCH_API_KEY and
SEMSEARCH_SHARED_DATA for a server holding ../shared/data/corpus-dev.jsonl.
Exactness is checked against the shared ground truth (queries-dev.jsonl).
"""

import json
import os
import pathlib

import pytest

from semsearch_client import AuthenticatedClient, Client
from semsearch_client.api.operations import get_health, get_ready, get_stats
from semsearch_client.api.search import get_document, search, search_batch
from semsearch_client.models import (
    BatchRequest,
    BatchResponse,
    DocumentResponse,
    Problem,
    IdQuery,
    ProblemCode,
    SearchResponse,
    StatsResponse,
    VectorQuery,
)

URL = os.environ["SEMSEARCH_URL"]
API_KEY = os.environ["SEMSEARCH_API_KEY"]
DATA = pathlib.Path(os.environ["SEMSEARCH_SHARED_DATA"])


def corpus_size() -> int:
    with open(DATA / "corpus-dev.jsonl", encoding="utf-8") as f:
        return sum(1 for line in f if line.strip())


def ground_truth(n: int):
    with open(DATA / "queries-dev.jsonl", encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()][:n]


@pytest.fixture
def client() -> AuthenticatedClient:
    return AuthenticatedClient(base_url=URL, token=API_KEY)


def test_search_returns_the_ground_truth_top_10(client):
    for query in ground_truth(5):
        response = search.sync(client=client, body=VectorQuery(vector=query["embedding"], k=10, with_text=False))

        assert isinstance(response, SearchResponse), response
        got = [(r.url, r.score) for r in response.results]
        expected = [(e["url"], e["score"]) for e in query["top10"]]
        assert [u for u, _ in got] == [u for u, _ in expected], f"expected {expected}\ngot      {got}"
        assert all(abs(g - e) <= 1e-5 for (_, g), (_, e) in zip(got, expected))


def test_stats_count_the_corpus(client):
    stats = get_stats.sync(client=client)

    assert isinstance(stats, StatsResponse), stats
    assert stats.documents == corpus_size()
    assert stats.dimension == len(ground_truth(1)[0]["embedding"])


def test_errors_arrive_as_typed_problems(client):
    wrong_dimension = search.sync(client=client, body=VectorQuery(vector=[1.0, 0.0], k=3))
    unauthorized = get_stats.sync(client=Client(base_url=URL))

    assert isinstance(wrong_dimension, Problem), wrong_dimension
    assert wrong_dimension.code == ProblemCode.WRONG_DIMENSION
    assert wrong_dimension.status == 422
    assert isinstance(unauthorized, Problem), unauthorized
    assert unauthorized.code == ProblemCode.UNAUTHORIZED


def test_open_routes_need_no_key():
    anonymous = Client(base_url=URL)

    assert get_health.sync(client=anonymous).status == "ok"
    assert get_ready.sync(client=anonymous).documents == corpus_size()


def test_batch_answers_every_query_in_order_like_single_searches(client):
    queries = ground_truth(5)
    body = BatchRequest(queries=[VectorQuery(vector=q["embedding"], k=10, with_text=False) for q in queries])

    response = search_batch.sync(client=client, body=body)

    assert isinstance(response, BatchResponse), response
    assert len(response.results) == len(queries)
    for results, query in zip(response.results, queries):
        assert [r.url for r in results] == [e["url"] for e in query["top10"]]


def test_more_like_this_and_document_lookup_by_url_id(client):
    first = ground_truth(1)[0]["top10"][0]["url"]

    doc = get_document.sync(id=first, client=client, with_embedding=True)
    similar = search.sync(client=client, body=IdQuery(id=first, k=3, with_text=False))

    assert isinstance(doc, DocumentResponse), doc
    assert doc.url == first and len(doc.embedding) == len(ground_truth(1)[0]["embedding"])
    assert isinstance(similar, SearchResponse), similar
    assert len(similar.results) == 3 and first not in [r.url for r in similar.results]
