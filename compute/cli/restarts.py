"""When `compute up` starts a dead child again, and when it gives up.

A child that dies is started again after a delay that doubles with each quick death (1 s,
2 s, 4 s ... up to 30 s), so a broker that cannot bind, or a worker whose import fails,
does not spin; a run that lasted a while starts the doubling afresh. A child that dies
`max_exits` times within `window_seconds` is crash-looping: restarting it again would
only hide the fault, so the service stops and says why.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass


@dataclass(frozen=True)
class RestartPolicy:
    """How dead children are restarted.

    Attributes:
        first_delay_seconds: the wait before the first restart after a quick death.
        max_delay_seconds: the longest wait, however many deaths came before.
        stable_after_seconds: a run at least this long resets the wait to the first.
        max_exits: this many deaths of one child ...
        window_seconds: ... within this many seconds is a crash loop.
    """

    first_delay_seconds: float = 1.0
    max_delay_seconds: float = 30.0
    stable_after_seconds: float = 30.0
    max_exits: int = 5
    window_seconds: float = 60.0


class RestartHistory:
    """One child's recent deaths, judged by a policy."""

    def __init__(self, policy: RestartPolicy) -> None:
        self.policy = policy
        self._exits: deque[float] = deque()
        self._quick_exits = 0

    def next_delay(self, now: float, uptime: float) -> float | None:
        """Note a death at `now` (monotonic seconds) after `uptime` seconds of running.

        Returns:
            How long to wait before restarting, or None when the child is crash-looping.
        """
        policy = self.policy
        self._exits.append(now)
        while now - self._exits[0] > policy.window_seconds:
            self._exits.popleft()
        if len(self._exits) >= policy.max_exits:
            return None
        if uptime >= policy.stable_after_seconds:
            self._quick_exits = 0
        delay: float = min(
            policy.first_delay_seconds * 2**self._quick_exits, policy.max_delay_seconds
        )
        if delay < policy.max_delay_seconds:  # past the cap the count need not grow
            self._quick_exits += 1
        return delay

    def describe_loop(self) -> str:
        """The crash loop in words: how many deaths within how long."""
        return f"{len(self._exits)} times within {self.policy.window_seconds:g} s"
