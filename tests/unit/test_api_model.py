"""infra.local.api_model.match: API Gateway's resource precedence on a hand-built tree."""

from __future__ import annotations

import pytest

from infra.local.api_model import ResourceNode, match


def node(part: str, parent: ResourceNode) -> ResourceNode:
    path = ("" if parent.path == "/" else parent.path) + "/" + part
    child = ResourceNode(part, path, f"id-{path}")
    parent.children.append(child)
    return child


@pytest.fixture
def root() -> ResourceNode:
    """
    /
    └── api/v1
        ├── routes
        │   ├── {proxy+}      (added first: order in the tree must not matter)
        │   ├── {route_id}
        │   │   └── versions/{version}
        │   └── latest
        ├── clients/{client_id}/keys/{key_id}
        └── files/{proxy+}
    """
    tree = ResourceNode("", "/", "root-id")
    v1 = node("v1", node("api", tree))
    routes = node("routes", v1)
    node("{proxy+}", routes)
    route_id = node("{route_id}", routes)
    node("{version}", node("versions", route_id))
    node("latest", routes)
    node("{key_id}", node("keys", node("{client_id}", node("clients", v1))))
    node("{proxy+}", node("files", v1))
    return tree


def matched(root: ResourceNode, path: str) -> tuple[str, dict[str, str]] | None:
    found = match(root, path)
    return None if found is None else (found[0].path, found[1])


def test_given_a_literal_a_param_and_a_proxy_sibling_when_the_literal_matches_then_the_literal_wins(
    root: ResourceNode,
) -> None:
    assert matched(root, "/api/v1/routes/latest") == ("/api/v1/routes/latest", {})


def test_given_a_param_and_a_proxy_sibling_when_one_segment_follows_then_the_param_wins(root: ResourceNode) -> None:
    assert matched(root, "/api/v1/routes/r-42") == ("/api/v1/routes/{route_id}", {"route_id": "r-42"})


def test_given_a_param_branch_that_cannot_finish_the_path_when_matched_then_the_proxy_takes_it(
    root: ResourceNode,
) -> None:
    assert matched(root, "/api/v1/routes/r-42/unknown/deeper") == (
        "/api/v1/routes/{proxy+}",
        {"proxy": "r-42/unknown/deeper"},
    )


def test_given_nested_params_when_matched_then_every_param_is_extracted(root: ResourceNode) -> None:
    assert matched(root, "/api/v1/clients/c-1/keys/k-9") == (
        "/api/v1/clients/{client_id}/keys/{key_id}",
        {"client_id": "c-1", "key_id": "k-9"},
    )
    assert matched(root, "/api/v1/routes/r-1/versions/3") == (
        "/api/v1/routes/{route_id}/versions/{version}",
        {"route_id": "r-1", "version": "3"},
    )


def test_given_a_greedy_proxy_when_matched_then_it_captures_the_rest_joined_with_slashes(root: ResourceNode) -> None:
    assert matched(root, "/api/v1/files/statements/2026/11/nov.pdf") == (
        "/api/v1/files/{proxy+}",
        {"proxy": "statements/2026/11/nov.pdf"},
    )


def test_given_an_intermediate_resource_when_matched_exactly_then_that_node_is_returned(root: ResourceNode) -> None:
    assert matched(root, "/api/v1/routes") == ("/api/v1/routes", {})
    assert matched(root, "/api/v1/clients/c-1/keys") == ("/api/v1/clients/{client_id}/keys", {"client_id": "c-1"})
    assert matched(root, "/") == ("/", {})


def test_given_empty_segments_when_matched_then_they_are_ignored(root: ResourceNode) -> None:
    assert matched(root, "/api//v1/routes/latest/") == ("/api/v1/routes/latest", {})


@pytest.mark.parametrize(
    "path",
    ["/nowhere", "/api/v2/routes", "/api/v1/clients/c-1/keys/k-1/extra"],
)
def test_given_a_path_outside_the_tree_when_matched_then_none(root: ResourceNode, path: str) -> None:
    assert matched(root, path) is None
