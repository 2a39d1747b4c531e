"""A browser-less Streamlit client: one session over ``/_stcore/stream``, as the web client speaks it.

What the browser does, and what this does the same way (Streamlit 1.67, ``streamlit.proto``):

- ``GET /_stcore/health`` sets the ``_streamlit_xsrf`` cookie; the websocket is opened with the
  subprotocols ``["streamlit", <xsrf token>]``, that cookie and an ``Origin`` header.
- Every run is asked for with a ``BackMsg.rerun_script`` (a ``ClientState``: page script hash,
  every widget value the client holds as ``WidgetStates``). The server answers with
  ``ForwardMsg``s: ``new_session`` (the run started), ``navigation`` (the page list), ``delta``s
  (one element each) and ``script_finished``.
- A file upload asks for URLs (``BackMsg.file_urls_request`` → ``ForwardMsg.file_urls_response``),
  ``PUT``s the bytes as multipart form data with the ``X-Xsrftoken`` header, then reruns with the
  uploader's ``file_uploader_state_value``.

The client keeps no message cache (it never lists ``cached_message_hashes``), so the server sends
every element in full, as it does to a browser's first visit.
"""

from __future__ import annotations

import asyncio
import http.client
import time
import urllib.parse
import uuid
from dataclasses import dataclass, field

from streamlit.proto.BackMsg_pb2 import BackMsg
from streamlit.proto.Common_pb2 import FileURLs, UploadedFileInfo
from streamlit.proto.Element_pb2 import Element
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
from streamlit.proto.WidgetStates_pb2 import WidgetState
from websockets.asyncio.client import connect

XSRF_COOKIE = "_streamlit_xsrf"
SUCCESS = ForwardMsg.ScriptFinishedStatus.FINISHED_SUCCESSFULLY


class SessionError(RuntimeError):
    """The server answered a run with an exception, a compile error, a closed socket or nothing in time."""


@dataclass
class Run:
    """One script run as the client saw it: ``seconds`` from the request to ``script_finished``;
    ``elements`` in arrival order; ``exceptions`` the messages of any ``st.exception`` box."""

    seconds: float
    elements: list[Element] = field(default_factory=list)
    arrivals: list[float] = field(default_factory=list)  # s from the request to each element
    exceptions: list[str] = field(default_factory=list)

    def widget_index(self, kind: str, label_start: str) -> int:
        """Position in ``elements`` of the first ``kind`` element (``"slider"``, ``"file_uploader"``,
        ``"metric"``…) whose label starts with ``label_start``."""
        for index, element in enumerate(self.elements):
            if element.WhichOneof("type") == kind and getattr(element, kind).label.startswith(label_start):
                return index
        raise KeyError(f"no {kind} labelled {label_start!r} in this run")

    def widget(self, kind: str, label_start: str):
        """That element's own proto (``element.slider``…)."""
        return getattr(self.elements[self.widget_index(kind, label_start)], kind)

    def arrival(self, index: int) -> float:
        return self.arrivals[index]

    def metric(self, label_start: str) -> str:
        """The shown value of the ``st.metric`` whose label starts with ``label_start``."""
        return self.widget("metric", label_start).body

    def texts(self) -> list[str]:
        """Every Markdown/alert body and widget label in the run (what a reader of the page sees)."""
        found = []
        for element in self.elements:
            kind = element.WhichOneof("type")
            part = getattr(element, kind)
            for name in ("body", "label"):
                value = getattr(part, name, None)
                if isinstance(value, str) and value:
                    found.append(value)
        return found


class Session:
    """One visitor. Use as ``async with Session(base_url) as s: run = await s.rerun()``."""

    def __init__(self, base_url: str, timeout: float = 120.0):
        self.base_url = base_url.rstrip("/")
        self.parts = urllib.parse.urlsplit(self.base_url)
        self.timeout = timeout
        self.session_id = ""
        self.pages: dict[str, str] = {}  # page title → page_script_hash (from the navigation message)
        self.page_hash = ""
        self.widgets: dict[str, WidgetState] = {}  # what the client sends with every rerun
        self._xsrf = ""
        self._socket = None
        self._reader: asyncio.Task | None = None
        self._inbox: asyncio.Queue[ForwardMsg | Exception] = asyncio.Queue()

    async def __aenter__(self) -> Session:
        await self.open()
        return self

    async def __aexit__(self, *exc) -> None:
        await self.close()

    async def open(self) -> None:
        self._xsrf = await asyncio.to_thread(self._fetch_xsrf_cookie)
        url = f"ws://{self.parts.netloc}/_stcore/stream"
        self._socket = await connect(url, subprotocols=["streamlit", self._xsrf], origin=self.base_url,
                                     additional_headers={"Cookie": f"{XSRF_COOKIE}={self._xsrf}"},
                                     max_size=None, open_timeout=self.timeout, ping_interval=None)
        self._reader = asyncio.create_task(self._read())

    async def close(self) -> None:
        if self._socket is not None:
            await self._socket.close()
        if self._reader is not None:
            self._reader.cancel()

    async def _read(self) -> None:
        try:
            async for frame in self._socket:
                message = ForwardMsg()
                message.ParseFromString(frame)
                await self._inbox.put(message)
        except Exception as err:  # noqa: BLE001 — handed to whoever waits for the next message
            await self._inbox.put(err)
        else:
            await self._inbox.put(SessionError("the server closed the websocket"))

    async def _next(self, deadline: float) -> ForwardMsg:
        left = deadline - time.monotonic()
        if left <= 0:
            raise SessionError(f"no answer within {self.timeout:.0f} s")
        try:
            item = await asyncio.wait_for(self._inbox.get(), left)
        except TimeoutError as err:
            raise SessionError(f"no answer within {self.timeout:.0f} s") from err
        if isinstance(item, Exception):
            raise SessionError(f"websocket: {item}") from item
        return item

    # --- runs ----------------------------------------------------------------------------

    async def rerun(self, page: str | None = None) -> Run:
        """Ask for a run (of ``page``, a title from the navigation, or the current page) with
        every widget value held; wait for its ``script_finished``. Raises ``SessionError`` on an
        exception box, a non-successful finish, a closed socket or a timeout."""
        if page is not None:
            self.page_hash = self.pages[page]
            self.widgets.clear()  # the browser forgets a page's widgets when it leaves it
        message = BackMsg()
        message.rerun_script.page_script_hash = self.page_hash
        message.rerun_script.widget_states.widgets.extend(self.widgets.values())
        start = time.monotonic()
        await self._socket.send(message.SerializeToString())
        return await self._collect(start)

    async def _collect(self, start: float) -> Run:
        run = Run(seconds=0.0)
        deadline = start + self.timeout
        while True:
            message = await self._next(deadline)
            kind = message.WhichOneof("type")
            if kind == "new_session":
                self.session_id = message.new_session.initialize.session_id or self.session_id
                self.page_hash = message.new_session.page_script_hash
            elif kind == "navigation":
                self.pages = {page.page_name: page.page_script_hash for page in message.navigation.app_pages}
            elif kind == "delta" and message.delta.WhichOneof("type") == "new_element":
                element = message.delta.new_element
                run.elements.append(element)
                run.arrivals.append(time.monotonic() - start)
                if element.WhichOneof("type") == "exception":
                    run.exceptions.append(f"{element.exception.type}: {element.exception.message}")
            elif kind == "script_finished":
                run.seconds = time.monotonic() - start
                if message.script_finished != SUCCESS or run.exceptions:
                    status = ForwardMsg.ScriptFinishedStatus.Name(message.script_finished)
                    raise SessionError(f"run ended {status}: {'; '.join(run.exceptions) or 'no exception shown'}")
                return run

    def set_slider(self, widget_id: str, value: float) -> None:
        """Hold a new value for a one-handle slider (sent with the next rerun)."""
        state = WidgetState(id=widget_id)
        state.double_array_value.data.append(float(value))
        self.widgets[widget_id] = state

    # --- uploads -------------------------------------------------------------------------

    async def upload(self, widget_id: str, name: str, data: bytes, content_type: str = "text/csv") -> None:
        """Upload ``data`` as ``name`` to the file uploader ``widget_id`` the way the browser does;
        the next ``rerun()`` sees the file."""
        request_id = uuid.uuid4().hex
        message = BackMsg()
        message.file_urls_request.request_id = request_id
        message.file_urls_request.session_id = self.session_id
        message.file_urls_request.file_names.append(name)
        await self._socket.send(message.SerializeToString())
        deadline = time.monotonic() + self.timeout
        while True:
            reply = await self._next(deadline)
            if reply.WhichOneof("type") == "file_urls_response" and reply.file_urls_response.response_id == request_id:
                break
        if reply.file_urls_response.error_msg:
            raise SessionError(f"upload refused: {reply.file_urls_response.error_msg}")
        urls: FileURLs = reply.file_urls_response.file_urls[0]
        await asyncio.to_thread(self._put_file, urls.upload_url, name, data, content_type)
        state = WidgetState(id=widget_id)
        info = UploadedFileInfo(file_id=urls.file_id, name=name, size=len(data))
        info.file_urls.CopyFrom(urls)
        state.file_uploader_state_value.uploaded_file_info.append(info)
        self.widgets[widget_id] = state

    def _connection(self) -> http.client.HTTPConnection:
        return http.client.HTTPConnection(self.parts.hostname, self.parts.port, timeout=self.timeout)

    def _fetch_xsrf_cookie(self) -> str:
        connection = self._connection()
        try:
            connection.request("GET", "/_stcore/health")
            reply = connection.getresponse()
            reply.read()
            for header, value in reply.getheaders():
                if header.lower() == "set-cookie" and value.startswith(XSRF_COOKIE + "="):
                    return value.split(";", 1)[0].split("=", 1)[1]
        finally:
            connection.close()
        return ""  # XSRF protection off: the server asks for no token

    def _put_file(self, upload_url: str, name: str, data: bytes, content_type: str) -> None:
        boundary = uuid.uuid4().hex
        quoted = name.replace('"', "%22")
        body = (f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{quoted}"\r\n'
                f"Content-Type: {content_type}\r\n\r\n").encode() + data + f"\r\n--{boundary}--\r\n".encode()
        path = urllib.parse.urlsplit(upload_url).path if "://" in upload_url else upload_url
        connection = self._connection()
        try:
            connection.request("PUT", path, body=body, headers={
                "Content-Type": f"multipart/form-data; boundary={boundary}", "X-Xsrftoken": self._xsrf,
                "Cookie": f"{XSRF_COOKIE}={self._xsrf}", "Origin": self.base_url})
            reply = connection.getresponse()
            detail = reply.read()[:200]
            if reply.status >= 300:
                raise SessionError(f"upload PUT {path} answered {reply.status}: {detail!r}")
        finally:
            connection.close()
