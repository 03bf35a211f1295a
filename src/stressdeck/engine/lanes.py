"""The open model's connection bound: a worker sends on a fixed number of lanes.

The contract every HTTP client of the open model honours (the fast client's and aiohttp's):

- A worker owns ``connections`` lanes. A lane carries one request at a time and keeps one
  keep-alive connection per origin; a client must never open more connections than the
  worker has lanes (per origin), whatever the rate and whatever the target does. This is
  how wrk2 holds a rate without letting a slow target multiply the sockets.
- A request that falls due is offered to the ``Backlog``. While every lane is busy it
  waits there; its latency still counts from when it was due (coordinated omission), its
  service time from when a lane sent it.
- ``max_in_flight`` bounds what is due and not yet settled (waiting plus on the wire); an
  offer beyond it is refused and the caller counts the request as ``dropped``.
- At stop, requests still waiting never left the generator: they are ``dropped``. Requests
  on the wire are ``cancelled`` (see ``client.send``).

A lane is a coroutine that loops on ``await backlog.take()``, sends, then calls
``backlog.done()``; the worker starts ``connections`` of them (``Worker._lane``).

What a client must do to plug in (``client.send`` is the aiohttp one):

- send one request per call, on the lane's own connection (open it lazily, reopen it when
  the server closed it; never a second one for the same origin at the same time);
- keep the lane's ``client.Sending`` slot current (``sending_slot()`` in the lane's task):
  ``index`` while a request is out, ``on_wire`` once its bytes were handed to the socket.
  At stop the worker settles every lane from these slots at once (cancelled if on the
  wire, dropped if not) and then cancels the lanes, so a client records nothing itself
  once cancelled unless its slot still holds the request;
- time out only what is on the wire, and record every outcome once in the ``Recorder``.
"""

from __future__ import annotations

import asyncio
from collections import deque

YIELD_EVERY = 32
Due = tuple[float, int]  # (perf_counter instant the request fell due, endpoint index)


class Backlog:
    """Requests that fell due, waiting for a free lane; bounded by ``limit`` in flight."""

    def __init__(self, limit: int) -> None:
        self.limit = max(limit, 1)
        self.busy = 0  # lanes sending right now
        self._waiting: deque[Due] = deque()
        self._idle: deque[asyncio.Future[None]] = deque()
        self._streak = 0  # requests taken in a row without waiting

    @property
    def waiting(self) -> int:
        return len(self._waiting)

    @property
    def in_flight(self) -> int:
        """Due and not settled: waiting for a lane, or on the wire."""
        return len(self._waiting) + self.busy

    def offer(self, due: float, index: int) -> bool:
        """Queue a request that fell due; False (count it dropped) when ``limit`` are in flight."""
        if len(self._waiting) + self.busy >= self.limit:
            return False
        self._waiting.append((due, index))
        while self._idle:
            # The lane that went idle last: its connection is warm, and a low rate keeps
            # reusing a few connections instead of opening all of them in turn.
            lane = self._idle.pop()
            if not lane.done():  # a lane cancelled while idle leaves a done future behind
                lane.set_result(None)
                break
        return True

    async def take(self) -> Due:
        """The oldest waiting request, once there is one; the caller is then busy."""
        self._streak += 1
        if self._streak >= YIELD_EVERY and self._waiting:
            # Requests that fail without ever suspending (a refused connect on loopback)
            # would drain a long backlog in one go and starve the ticker: yield now and then.
            self._streak = 0
            await asyncio.sleep(0)
        while not self._waiting:
            self._streak = 0
            wake = asyncio.get_running_loop().create_future()
            self._idle.append(wake)
            await wake
        self.busy += 1
        return self._waiting.popleft()

    def done(self) -> None:
        """A lane finished its request (or was cancelled in it)."""
        self.busy -= 1

    def clear(self) -> list[Due]:
        """Take every request still waiting (at stop: they never left, so they are dropped)."""
        left = list(self._waiting)
        self._waiting.clear()
        return left
