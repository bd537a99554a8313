"""A StatusNotifierWatcher and a dbusmenu client on a private bus: the tray as a panel sees it."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Final

from jeepney import (
    DBusAddress,
    HeaderFields,
    MatchRule,
    Message,
    MessageFlag,
    MessageType,
    Properties,
    message_bus,
    new_error,
    new_method_call,
    new_method_return,
    new_signal,
)
from jeepney.bus_messages import DBusNameFlags
from jeepney.io import blocking
from jeepney.io.threading import DBusConnection, ReceiveStopped, open_dbus_connection
from jeepney.wrappers import unwrap_msg

WATCHER_NAME: Final = "org.kde.StatusNotifierWatcher"
WATCHER: Final = DBusAddress(
    "/StatusNotifierWatcher", bus_name=WATCHER_NAME, interface=WATCHER_NAME
)
ITEM_INTERFACE: Final = "org.kde.StatusNotifierItem"
ITEM_PATH: Final = "/StatusNotifierItem"
DBUSMENU_INTERFACE: Final = "com.canonical.dbusmenu"
PROPERTIES_INTERFACE: Final = "org.freedesktop.DBus.Properties"
#: Every D-Bus call and wait here is bounded by this (real seconds): generous for a busy machine.
SNI_TIMEOUT_S: Final = 30.0

_MNEMONIC: Final = re.compile(r"_(.)")


def strip_mnemonic(label: str) -> str:
    """A dbusmenu label as shown: `_` marks the mnemonic letter, `__` is a literal underscore."""
    return _MNEMONIC.sub(r"\1", label)


@dataclass(frozen=True)
class SniItem:
    """One registration: the item's bus name and object path, and the connection that sent it."""

    bus_name: str
    path: str
    sender: str

    @property
    def service(self) -> str:
        """The string the watcher lists in RegisteredStatusNotifierItems."""
        return f"{self.bus_name}{self.path}"


class StatusNotifierWatcher:
    """Owns org.kde.StatusNotifierWatcher on a bus, as a panel's watcher does.

    Implements RegisterStatusNotifierItem/RegisterStatusNotifierHost, the properties a host reads
    (RegisteredStatusNotifierItems, IsStatusNotifierHostRegistered, ProtocolVersion) and the
    Registered/Unregistered signals. An item leaves the list when its connection leaves the bus.
    `registrations` keeps every registration ever made, in order.
    """

    def __init__(self, address: str) -> None:
        self._changed = threading.Condition()
        self._items: list[SniItem] = []
        self._registrations: list[SniItem] = []
        self._hosts: list[str] = []
        self._conn: DBusConnection = open_dbus_connection(address)
        try:
            self.unique_name: str = self._conn.unique_name
            self._call_bus(message_bus.RequestName(WATCHER_NAME, DBusNameFlags.do_not_queue), 1)
            rule = MatchRule(
                type="signal",
                sender="org.freedesktop.DBus",
                interface="org.freedesktop.DBus",
                member="NameOwnerChanged",
            )
            self._call_bus(message_bus.AddMatch(rule), None)
        except BaseException:
            self._conn.close()
            raise
        self._thread = threading.Thread(target=self._serve, name="sni-watcher")
        self._thread.start()

    def _call_bus(self, message: Message, expected_first: int | None) -> None:
        serial = next(self._conn.outgoing_serial)
        self._conn.send(message, serial=serial)
        deadline = time.monotonic() + SNI_TIMEOUT_S
        while True:
            reply = self._conn.receive(timeout=max(0.0, deadline - time.monotonic()))
            if reply.header.fields.get(HeaderFields.reply_serial) == serial:
                break
        failed = reply.header.message_type == MessageType.error
        if failed or (expected_first is not None and reply.body[0] != expected_first):
            raise RuntimeError(f"the bus refused {message.header.fields}: {reply.body}")

    # Test side ----------------------------------------------------------------------------

    @property
    def items(self) -> list[SniItem]:
        """The items registered now (whose connection is still on the bus)."""
        with self._changed:
            return list(self._items)

    @property
    def registrations(self) -> list[SniItem]:
        """Every registration made since the watcher started, including items gone since."""
        with self._changed:
            return list(self._registrations)

    def wait_until(self, check: Callable[[list[SniItem]], bool], timeout: float) -> bool:
        """Waits (woken by each registration change) until `check(items)` holds; returns it."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while not check(list(self._items)):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._changed.wait(remaining)
            return True

    def wait_for_item(self, timeout: float = SNI_TIMEOUT_S) -> SniItem:
        """The first registered item, once there is one (TimeoutError if none comes)."""
        if not self.wait_until(bool, timeout):
            raise TimeoutError(f"no StatusNotifierItem registered within {timeout} s")
        return self.items[0]

    def stop(self) -> None:
        self._conn.interrupt()
        self._thread.join(timeout=SNI_TIMEOUT_S)
        self._conn.close()

    # Watcher side -------------------------------------------------------------------------

    def _serve(self) -> None:
        try:
            while True:
                message = self._conn.receive()
                kind = message.header.message_type
                if kind == MessageType.method_call:
                    self._answer(message)
                elif kind == MessageType.signal:
                    self._on_signal(message)
        except (ReceiveStopped, OSError, ValueError):
            return

    def _emit(self, member: str, signature: str | None = None, body: tuple[Any, ...] = ()) -> None:
        self._conn.send(new_signal(WATCHER, member, signature, body))

    def _on_signal(self, message: Message) -> None:
        if message.header.fields.get(HeaderFields.member) != "NameOwnerChanged":
            return
        name, _old, new = message.body
        if new:
            return
        with self._changed:
            gone = [i for i in self._items if name in (i.bus_name, i.sender)]
            self._items = [i for i in self._items if i not in gone]
            self._hosts = [h for h in self._hosts if h != name]
            self._changed.notify_all()
        for item in gone:
            self._emit("StatusNotifierItemUnregistered", "s", (item.service,))

    def _properties(self) -> dict[str, tuple[str, Any]]:
        with self._changed:
            return {
                "RegisteredStatusNotifierItems": ("as", [i.service for i in self._items]),
                "IsStatusNotifierHostRegistered": ("b", True),
                "ProtocolVersion": ("i", 0),
            }

    def _answer(self, call: Message) -> None:
        fields: Mapping[HeaderFields, Any] = call.header.fields
        interface = fields.get(HeaderFields.interface)
        member = str(fields.get(HeaderFields.member))
        sender = str(fields.get(HeaderFields.sender, ""))
        if interface == WATCHER_NAME and member == "RegisterStatusNotifierItem":
            service = str(call.body[0])
            if service.startswith("/"):
                item = SniItem(sender, service, sender)
            else:
                item = SniItem(service, ITEM_PATH, sender)
            self._conn.send(new_method_return(call))
            with self._changed:
                if item not in self._items:
                    self._items.append(item)
                self._registrations.append(item)
                self._changed.notify_all()
            self._emit("StatusNotifierItemRegistered", "s", (item.service,))
        elif interface == WATCHER_NAME and member == "RegisterStatusNotifierHost":
            with self._changed:
                self._hosts.append(sender)
            self._conn.send(new_method_return(call))
            self._emit("StatusNotifierHostRegistered")
        elif interface == PROPERTIES_INTERFACE and member == "Get":
            found = self._properties().get(str(call.body[1]))
            if found is None:
                error = "org.freedesktop.DBus.Error.UnknownProperty"
                self._conn.send(new_error(call, error, "s", (str(call.body[1]),)))
            else:
                self._conn.send(new_method_return(call, "v", (found,)))
        elif interface == PROPERTIES_INTERFACE and member == "GetAll":
            self._conn.send(new_method_return(call, "a{sv}", (self._properties(),)))
        else:
            error = "org.freedesktop.DBus.Error.UnknownMethod"
            self._conn.send(new_error(call, error, "s", (member,)))


# --- the item and its menu, read as a host does ----------------------------------------------


@dataclass(frozen=True)
class Pixmap:
    """One IconPixmap entry: ARGB32 big-endian pixels."""

    width: int
    height: int
    argb: bytes

    @property
    def well_formed(self) -> bool:
        return self.width > 0 and self.height > 0 and len(self.argb) == 4 * self.width * self.height

    @property
    def opaque_pixels(self) -> int:
        """How many pixels are not fully transparent (something is drawn)."""
        return sum(1 for at in range(0, len(self.argb), 4) if self.argb[at] != 0)


@dataclass(frozen=True)
class ItemProperties:
    """What a panel shows of an item."""

    title: str
    status: str
    tooltip_title: str
    tooltip_text: str
    pixmaps: tuple[Pixmap, ...]
    menu_path: str


@dataclass(frozen=True)
class MenuNode:
    """One dbusmenu entry, its label with the mnemonic marker removed."""

    id: int
    label: str
    enabled: bool
    visible: bool
    separator: bool
    submenu: bool
    children: tuple[MenuNode, ...]

    def labels(self) -> list[str]:
        """The labels of the visible, non-separator children, in order."""
        return [c.label for c in self.children if c.visible and not c.separator]

    def child(self, label: str) -> MenuNode:
        for node in self.children:
            if node.label == label and node.visible and not node.separator:
                return node
        raise LookupError(f"no menu entry {label!r} under {self.label!r}; it has {self.labels()}")

    def walk(self) -> Iterator[MenuNode]:
        yield self
        for node in self.children:
            yield from node.walk()


def _node(raw: tuple[int, Mapping[str, tuple[str, Any]], list[tuple[str, Any]]]) -> MenuNode:
    ident, props, children = raw

    def prop(name: str, default: Any) -> Any:
        found = props.get(name)
        return found[1] if found is not None else default

    return MenuNode(
        id=int(ident),
        label=strip_mnemonic(str(prop("label", ""))),
        enabled=bool(prop("enabled", True)),
        visible=bool(prop("visible", True)),
        separator=prop("type", "standard") == "separator",
        submenu=prop("children-display", "") == "submenu",
        children=tuple(_node(value) for _signature, value in children),
    )


class SniMenu:
    """A host's view of one registered item: its properties, its dbusmenu, clicks on entries.

    The app rebuilds its menu when it opens, so each `open()` (AboutToShow(0) then GetLayout)
    hands out fresh ids; a submenu gets AboutToShow before it is read, as a panel does.
    """

    def __init__(self, address: str, item: SniItem, timeout: float = SNI_TIMEOUT_S) -> None:
        self.item = item
        self.timeout = timeout
        self._conn = blocking.open_dbus_connection(address)
        self._item = DBusAddress(item.path, bus_name=item.bus_name, interface=ITEM_INTERFACE)
        self._menu: DBusAddress | None = None

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> SniMenu:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def _call(self, message: Message) -> tuple[Any, ...]:
        reply = self._conn.send_and_get_reply(message, timeout=self.timeout)
        return tuple(unwrap_msg(reply))

    def owner_pid(self) -> int:
        """The process id behind the item's connection."""
        bus = DBusAddress(
            "/org/freedesktop/DBus",
            bus_name="org.freedesktop.DBus",
            interface="org.freedesktop.DBus",
        )
        call = new_method_call(bus, "GetConnectionUnixProcessID", "s", (self.item.bus_name,))
        return int(self._call(call)[0])

    def properties(self) -> ItemProperties:
        values: dict[str, tuple[str, Any]] = self._call(Properties(self._item).get_all())[0]

        def value(name: str, default: Any) -> Any:
            found = values.get(name)
            return found[1] if found is not None else default

        _icon_name, _tip_pixmaps, tip_title, tip_text = value("ToolTip", ("", [], "", ""))
        return ItemProperties(
            title=str(value("Title", "")),
            status=str(value("Status", "")),
            tooltip_title=str(tip_title),
            tooltip_text=str(tip_text),
            pixmaps=tuple(
                Pixmap(int(w), int(h), bytes(data)) for w, h, data in value("IconPixmap", [])
            ),
            menu_path=str(value("Menu", "/")),
        )

    def _menu_address(self) -> DBusAddress:
        if self._menu is None:
            path = self.properties().menu_path
            if path in ("", "/"):
                raise LookupError("the item exports no menu")
            self._menu = DBusAddress(
                path, bus_name=self.item.bus_name, interface=DBUSMENU_INTERFACE
            )
        return self._menu

    def _about_to_show(self, ident: int) -> None:
        self._call(new_method_call(self._menu_address(), "AboutToShow", "i", (ident,)))

    def _layout(self, ident: int) -> MenuNode:
        call = new_method_call(self._menu_address(), "GetLayout", "iias", (ident, -1, []))
        _revision, raw = self._call(call)
        return _node(raw)

    def open(self) -> MenuNode:
        """The menu as it is when opened now (the root node; its children are the entries)."""
        self._about_to_show(0)
        return self._layout(0)

    def open_submenu(self, node: MenuNode) -> MenuNode:
        """A submenu of the menu last opened, read after telling the app it is about to show."""
        self._about_to_show(node.id)
        return self._layout(node.id)

    def find(self, *labels: str) -> MenuNode:
        """The entry at a label path, e.g. ("Snooze alerts", "Urgent low", "30 min"), opening
        the menu and each submenu on the way as a person does."""
        if not labels:
            raise ValueError("give at least one label")
        node = self.open()
        for depth, label in enumerate(labels):
            node = node.child(label)
            if depth < len(labels) - 1:
                node = self.open_submenu(node)
        return node

    def click(self, *labels: str) -> MenuNode:
        """Clicks the entry at a label path (as a panel does: Event "clicked", no reply awaited:
        Quit never answers). Returns the entry clicked; fails if it is disabled."""
        node = self.find(*labels)
        if not node.enabled:
            raise LookupError(f"menu entry {labels!r} is disabled")
        event = new_method_call(
            self._menu_address(), "Event", "isvu", (node.id, "clicked", ("i", 0), 0)
        )
        event.header.flags |= MessageFlag.no_reply_expected
        self._conn.send(event)
        return node
