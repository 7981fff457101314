"""serving.lengths: chat-like lengths by default, the old equal lengths on request, or the user's
file; and why: a closed loop of equal requests finishes them in waves that the windows count."""

from __future__ import annotations

import heapq
import statistics
from pathlib import Path

import pytest

from mlflow_energy.config import ConfigError
from mlflow_energy.inference.lengths import (
    CHAT_OUTPUT_MEAN_TOKENS,
    CHAT_PROMPT_MEAN_TOKENS,
    UNKNOWN_POSITIONS_CAP,
    output_cap,
    request_lengths,
    validate_lengths,
)


def test_chat_lengths_have_the_datasets_means_and_a_long_tail() -> None:
    lengths = request_lengths("chat", max_tokens=100_000, prompt_tokens=100_000, seed=0)
    assert statistics.mean(lengths.output_tokens) == pytest.approx(CHAT_OUTPUT_MEAN_TOKENS, rel=0.15)
    assert statistics.mean(lengths.prompt_tokens) == pytest.approx(CHAT_PROMPT_MEAN_TOKENS, rel=0.15)
    assert statistics.median(lengths.output_tokens) < 0.8 * CHAT_OUTPUT_MEAN_TOKENS  # long-tailed
    assert min(lengths.output_tokens) >= 1 and len(set(lengths.output_tokens)) > 1


def test_chat_lengths_are_capped_by_max_tokens_and_prompt_tokens_and_seeded() -> None:
    capped = request_lengths("chat", max_tokens=64, prompt_tokens=32, seed=3)
    assert max(capped.output_tokens) == 64 and max(capped.prompt_tokens) == 32
    assert capped == request_lengths("chat", max_tokens=64, prompt_tokens=32, seed=3)
    assert capped != request_lengths("chat", max_tokens=64, prompt_tokens=32, seed=4)


def test_a_null_cap_is_what_the_models_positions_leave() -> None:
    assert output_cap(None, prompt_tokens=64, max_positions=256) == 192
    assert output_cap(None, prompt_tokens=64, max_positions=None) == UNKNOWN_POSITIONS_CAP
    assert output_cap(100, prompt_tokens=64, max_positions=256) == 100


def test_same_is_max_tokens_for_every_request() -> None:
    lengths = request_lengths("same", max_tokens=64, prompt_tokens=256, seed=0)
    assert (lengths.output_tokens, lengths.prompt_tokens) == ([64], [256])


def test_a_file_gives_the_users_traffic(tmp_path: Path) -> None:
    path = tmp_path / "lengths.jsonl"
    path.write_text('{"output_tokens": 12, "prompt_tokens": 40}\n\n{"output_tokens": 900}\n', encoding="utf-8")
    lengths = request_lengths(str(path), max_tokens=500, prompt_tokens=256, seed=0)
    assert (lengths.output_tokens, lengths.prompt_tokens) == ([12, 500], [40])
    only_outputs = tmp_path / "outputs.jsonl"
    only_outputs.write_text('{"output_tokens": 7}\n', encoding="utf-8")
    assert request_lengths(str(only_outputs), 500, 256, 0).prompt_tokens == [256]


@pytest.mark.parametrize(("content", "message"), [
    (None, "is neither 'chat', 'same' nor an existing JSONL file"),
    ("", "holds no request"),
    ('{"prompt_tokens": 3}\n', 'line 1 of .* is not a JSON object with an "output_tokens" field'),
    ('{"output_tokens": 3}\nnot json\n', "line 2 of .* is not a JSON object"),
    ('{"output_tokens": 0}\n', "not a whole number of at least 1"),
    ('{"output_tokens": 5, "prompt_tokens": 2.5}\n', "not a whole number of at least 1"),
])  # fmt: skip
def test_a_bad_file_is_refused_in_one_sentence(tmp_path: Path, content: str | None, message: str) -> None:
    path = tmp_path / "lengths.jsonl"
    if content is not None:
        path.write_text(content, encoding="utf-8")
    with pytest.raises(ConfigError, match=message):
        validate_lengths(str(path))


def _window_counts(lengths: list[int], users: int = 32, windows: int = 40, window_s: float = 2.0) -> list[int]:
    """Requests completed per window by a closed loop of ``users``, a request taking its length
    in tokens x 20 ms whatever else runs (a server with room to spare): the waves' shape."""
    draw = iter(lengths * (10_000 // len(lengths) + 1))
    ends = [next(draw) * 0.02 for _ in range(users)]
    heapq.heapify(ends)
    counts = [0] * windows
    while ends[0] < windows * window_s:
        end = heapq.heappop(ends)
        counts[int(end // window_s)] += 1
        heapq.heappush(ends, end + next(draw) * 0.02)
    return counts[5:]  # after a ramp-up


def test_drawn_lengths_remove_the_waves_that_equal_lengths_make() -> None:
    same = _window_counts(request_lengths("same", 128, 256, 0).output_tokens)
    chat = _window_counts(request_lengths("chat", 1024, 256, 0).output_tokens)
    # Equal requests finish together: every window counts a whole wave of 32, or none.
    assert 0 in same and set(same) <= {0, 32, 64}
    # Drawn lengths desynchronise the users: every window counts some, in many different numbers.
    assert 0 not in chat and len(set(chat)) > 5
    assert statistics.pstdev(chat) / statistics.mean(chat) < statistics.pstdev(same) / statistics.mean(same)
