from http import HTTPStatus
from typing import Any, cast
from urllib.parse import quote

import httpx

from ...client import AuthenticatedClient, Client
from ...types import Response, UNSET
from ... import errors

from ...models.document_response import DocumentResponse
from ...models.problem import Problem
from ...types import UNSET, Unset
from typing import cast



def _get_kwargs(
    id: str,
    *,
    with_embedding: bool | Unset = UNSET,

) -> dict[str, Any]:
    

    

    params: dict[str, Any] = {}

    params["with_embedding"] = with_embedding


    params = {k: v for k, v in params.items() if v is not UNSET and v is not None}


    _kwargs: dict[str, Any] = {
        "method": "get",
        "url": "/v1/documents/{id}".format(id=quote(str(id), safe=""),),
        "params": params,
    }


    return _kwargs



def _parse_response(*, client: AuthenticatedClient | Client, response: httpx.Response) -> DocumentResponse | Problem | None:
    if response.status_code == 200:
        response_200 = DocumentResponse.from_dict(response.json())



        return response_200

    if response.status_code == 401:
        response_401 = Problem.from_dict(response.json())



        return response_401

    if response.status_code == 404:
        response_404 = Problem.from_dict(response.json())



        return response_404

    if response.status_code == 422:
        response_422 = Problem.from_dict(response.json())



        return response_422

    if response.status_code == 503:
        response_503 = Problem.from_dict(response.json())



        return response_503

    if client.raise_on_unexpected_status:
        raise errors.UnexpectedStatus(response.status_code, response.content)
    else:
        return None


def _build_response(*, client: AuthenticatedClient | Client, response: httpx.Response) -> Response[DocumentResponse | Problem]:
    return Response(
        status_code=HTTPStatus(response.status_code),
        content=response.content,
        headers=response.headers,
        parsed=_parse_response(client=client, response=response),
    )


def sync_detailed(
    id: str,
    *,
    client: AuthenticatedClient,
    with_embedding: bool | Unset = UNSET,

) -> Response[DocumentResponse | Problem]:
    """ One document by id, as the index holds it.

     404 `document_not_found` for an unknown or expired id; 503 `not_ready`
    before the first load; 422 `invalid_type` for a malformed query string.

    Args:
        id (str):
        with_embedding (bool | Unset):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[DocumentResponse | Problem]
     """


    kwargs = _get_kwargs(
        id=id,
with_embedding=with_embedding,

    )

    response = client.get_httpx_client().request(
        **kwargs,
    )

    return _build_response(client=client, response=response)

def sync(
    id: str,
    *,
    client: AuthenticatedClient,
    with_embedding: bool | Unset = UNSET,

) -> DocumentResponse | Problem | None:
    """ One document by id, as the index holds it.

     404 `document_not_found` for an unknown or expired id; 503 `not_ready`
    before the first load; 422 `invalid_type` for a malformed query string.

    Args:
        id (str):
        with_embedding (bool | Unset):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        DocumentResponse | Problem
     """


    return sync_detailed(
        id=id,
client=client,
with_embedding=with_embedding,

    ).parsed

async def asyncio_detailed(
    id: str,
    *,
    client: AuthenticatedClient,
    with_embedding: bool | Unset = UNSET,

) -> Response[DocumentResponse | Problem]:
    """ One document by id, as the index holds it.

     404 `document_not_found` for an unknown or expired id; 503 `not_ready`
    before the first load; 422 `invalid_type` for a malformed query string.

    Args:
        id (str):
        with_embedding (bool | Unset):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[DocumentResponse | Problem]
     """


    kwargs = _get_kwargs(
        id=id,
with_embedding=with_embedding,

    )

    response = await client.get_async_httpx_client().request(
        **kwargs
    )

    return _build_response(client=client, response=response)

async def asyncio(
    id: str,
    *,
    client: AuthenticatedClient,
    with_embedding: bool | Unset = UNSET,

) -> DocumentResponse | Problem | None:
    """ One document by id, as the index holds it.

     404 `document_not_found` for an unknown or expired id; 503 `not_ready`
    before the first load; 422 `invalid_type` for a malformed query string.

    Args:
        id (str):
        with_embedding (bool | Unset):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        DocumentResponse | Problem
     """


    return (await asyncio_detailed(
        id=id,
client=client,
with_embedding=with_embedding,

    )).parsed
