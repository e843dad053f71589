"""The token-F1 score and the corpus bookkeeping the quality figures rest on."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from bench.scoring import (
    corpus_root,
    documents,
    ground_truths,
    kind_of,
    normalise_truth,
    peer_bars,
    score,
    token_f1,
    tokens,
)

CORPUS = corpus_root()
needs_corpus = pytest.mark.skipif(
    not (CORPUS / "MANIFEST.tsv").is_file(), reason=f"corpus not found at {CORPUS}"
)


def md_tokens(text: str) -> Counter[str]:
    return tokens(normalise_truth(text, "md"))


def test_tokens_are_lower_cased_word_runs_counted() -> None:
    assert tokens("The cat, the HAT; 3.14") == Counter(
        {"the": 2, "cat": 1, "hat": 1, "3": 1, "14": 1}
    )


def test_tokens_keep_non_latin_words() -> None:
    assert tokens("Ünïcode 한국어 текст") == Counter({"ünïcode": 1, "한국어": 1, "текст": 1})


def test_markdown_links_and_images_keep_only_their_labels() -> None:
    text = "See [the docs](https://example.com/a_b) and ![a chart](img/chart.png)."
    assert md_tokens(text) == Counter({"see": 1, "the": 1, "docs": 1, "and": 1, "a": 1, "chart": 1})


def test_markdown_link_around_an_image_keeps_the_alt_text() -> None:
    assert md_tokens("[![Logo](logo.png)](https://example.com)") == Counter({"logo": 1})


def test_markdown_reference_links_keep_their_labels() -> None:
    text = "Read [the spec][1].\n\n[1]: https://example.com/spec"
    assert md_tokens(text) == Counter({"read": 1, "the": 1, "spec": 1})


def test_markdown_table_rules_and_markup_characters_go() -> None:
    table = "| Name | Value |\n|:-----|------:|\n| **a** | `b` |\n\n# Title\n> quoted _word_"
    assert md_tokens(table) == Counter(
        {"name": 1, "value": 1, "a": 1, "b": 1, "title": 1, "quoted": 1, "word": 1}
    )


def test_underscore_splits_words_whether_escaped_or_not() -> None:
    # Docling escapes underscores; plain text does not; both must score alike.
    assert md_tokens(r"snake\_case") == tokens(normalise_truth("snake_case", "txt"))
    assert md_tokens("snake_case") == Counter({"snake": 1, "case": 1})


def test_markdown_comments_go_but_raw_html_stays_as_the_peers_scored_it() -> None:
    text = "<!-- image -->\n<td>cell</td> &amp;"
    assert md_tokens(text) == Counter({"td": 2, "cell": 1, "amp": 1})


def test_html_loses_tags_comments_scripts_and_entities() -> None:
    page = (
        "<html><head><style>p {color: red}</style><script>var x = 1;</script></head>"
        "<body><!-- nav --><h1 class='t'>Fish &amp; chips</h1><p>a&lt;b</p></body></html>"
    )
    assert tokens(normalise_truth(page, "html")) == Counter({"fish": 1, "chips": 1, "a": 1, "b": 1})


def test_html_keeps_text_with_a_lone_less_than_sign() -> None:
    assert tokens(normalise_truth("<p>1 < 2 and 3 > 2</p>", "html")) == Counter(
        {"1": 1, "2": 2, "and": 1, "3": 1}
    )


def test_json_keeps_only_text_fields_and_not_link_labels() -> None:
    document = {
        "format": "docx",
        "metadata": {"title": None, "producer": "Writer"},
        "blocks": [
            {"id": "b1", "kind": "heading", "text": "Intro"},
            {"id": "b2", "kind": "paragraph", "text": "Go home", "links": [{"text": "home"}]},
            {"id": "b3", "kind": "table", "text": "", "table": {"cells": [{"text": "cell"}]}},
        ],
    }
    assert tokens(normalise_truth(json.dumps(document), "json")) == Counter(
        {"intro": 1, "go": 1, "home": 1, "cell": 1}
    )


def test_unknown_kind_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown scoring kind"):
        normalise_truth("x", "rtf")


@pytest.mark.parametrize(
    ("name", "kind"),
    [("a.expected.md", "md"), ("a.expected.txt", "txt"), ("b.HTML", "html"), ("c.json", "json")],
)
def test_kind_of_follows_the_suffix(name: str, kind: str) -> None:
    assert kind_of(Path(name)) == kind


def test_kind_of_refuses_other_suffixes() -> None:
    with pytest.raises(ValueError, match=r"\.pdf"):
        kind_of("x.pdf")


def test_f1_is_a_multiset_f1() -> None:
    predicted = Counter({"a": 2, "b": 1})
    truth = Counter({"a": 1, "b": 1, "c": 2})
    # common = a:1 + b:1 = 2; precision 2/3, recall 2/4
    assert token_f1(predicted, truth) == pytest.approx(2 * (2 / 3) * (1 / 2) / (2 / 3 + 1 / 2))


def test_f1_ignores_order_and_is_symmetric() -> None:
    assert score("b a c", "txt", "c b a", "txt") == 1.0
    a, b = tokens("x y y z"), tokens("y z z w")
    assert token_f1(a, b) == token_f1(b, a)


def test_f1_edge_cases() -> None:
    assert token_f1(Counter(), Counter()) == 1.0
    assert token_f1(Counter({"a": 1}), Counter()) == 0.0
    assert token_f1(Counter(), Counter({"a": 1})) == 0.0
    assert token_f1(Counter({"a": 1}), Counter({"b": 1})) == 0.0


def test_markdown_output_scores_perfectly_against_its_plain_text() -> None:
    output = "## Results\n\n| Model | Score |\n|---|---|\n| [BERT](https://x.org) | 0.91 |"
    assert score(output, "md", "Results\nModel Score\nBERT 0.91", "txt") == 1.0


def test_peer_bars_are_read_from_a_peers_file(tmp_path: Path) -> None:
    peers = tmp_path / "PEERS.md"
    peers.write_text(
        "# Peers\n\n## Success (no error)\n\n- markitdown: 65/85\n\n"
        "## Bars per folder (mean)\n\n| folder | bar |\n|---|---|\n| pdf | 0.716 |\n\n"
        "## Best peer score per file\n\n| file | best |\n|---|---|\n| pdf/a.pdf | 0.900 |\n\n"
        "## Throughput\n\n| tool | pages/s | vs |\n|---|---|---|\n| raw | 186 | 1.00 |\n",
        encoding="utf-8",
    )
    bars = peer_bars(peers)
    assert bars.folders == {"pdf": 0.716}
    assert bars.files == {"pdf/a.pdf": 0.9}
    assert bars.success == {"markitdown": (65, 85)}


def test_corpus_root_follows_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("DOCWORKER_CORPUS", str(tmp_path))
    assert corpus_root() == tmp_path
    monkeypatch.delenv("DOCWORKER_CORPUS")
    assert corpus_root().parts[-2:] == ("shared", "corpus")


@needs_corpus
def test_ground_truths_pair_every_truth_with_its_document() -> None:
    pairs = ground_truths()
    assert pairs, "the manifest names no ground truth"
    for pair in pairs:
        assert pair.folder not in {"hostile", "archives", "media"}
        assert (CORPUS / pair.document).is_file()
        assert (CORPUS / pair.truth).is_file()
        assert pair.truth.startswith(pair.document.rsplit(".", 1)[0] + ".expected.")
    documents_with_truth = {pair.document for pair in pairs}
    assert "pdf/multi-page-article.pdf" in documents_with_truth
    assert "media/webvtt-example.vtt" in {pair.document for pair in ground_truths(with_media=True)}


@needs_corpus
def test_ground_truths_know_which_peer_produced_them() -> None:
    by_document = {pair.document: pair for pair in ground_truths()}
    assert by_document["pdf/multi-page-article.pdf"].produced_by == "docling"
    assert by_document["office/handbook-1p.docx"].produced_by == "unstructured"
    assert by_document["pdf/latex-multicolumn.pdf"].produced_by is None


@needs_corpus
def test_documents_leave_out_hostile_archives_and_truths() -> None:
    listed = documents()
    assert len(listed) == 85  # the count PEERS.md measured success over
    assert all(d.folder not in {"hostile", "archives", "media"} for d in listed)
    assert all(d.kind != "expected" for d in listed)


@needs_corpus
def test_every_truth_scores_one_against_itself_and_peers_cover_them_all() -> None:
    bars = peer_bars()
    for pair in ground_truths():
        assert pair.score(pair.read(), pair.kind) == 1.0
        assert pair.document in bars.files
    assert set(bars.folders) == {"images", "office", "pdf", "text", "web"}
