"""Write Sluice domain policies in a few lines of Python.

A policy decides, the gateway does. An instance is built once from its domain
and the domain's `[settings]` table (`Policy.configure`), then answers each
`Request` with a `Plan`: a few Redis actions, which one's reply is the response,
and hints. It never holds a connection, never blocks, and sees no clock or
randomness except what the request carries, so it is tested natively, as plain
Python, with pytest. This package mirrors the Rust SDK (`sdk/src`), for the
contract `sluice:policy@0.3.0` (`sdk/wit/policy.wit`); componentize-py builds a
policy module ending in `WitWorld = export(MyPolicy)` into a component.

Import everything at the top of a module: the component holds only the modules
imported when it was built.
"""

from .actions import (
    Action,
    CounterAdd,
    CounterGet,
    Delete,
    Expire,
    Get,
    HashAdd,
    HashDelete,
    HashGet,
    HashSet,
    KeyTtl,
    ListEnd,
    ListPush,
    ListRange,
    ListRemove,
    Number,
    Rank,
    Score,
    ScoredMember,
    Script,
    Set,
    SetAdd,
    SetContains,
    SetCount,
    SetIfAbsent,
    SetMembers,
    SetRemove,
    StreamAdd,
    ZsetAdd,
    ZsetCondition,
    ZsetCount,
    ZsetIncr,
    ZsetRange,
    ZsetRemove,
    ZsetScore,
    ZsetTrim,
)
from .errors import BadConfig, BadRequest, Error, Internal
from .plan import CacheHint, Plan, Step
from .policy import Domain, LogLevel, NoSettings, Policy, export, log
from .request import AccessStats, Operation, Replies, Request
from .value import S64, U32, U64, Value

__all__ = [
    "AccessStats", "Action", "BadConfig", "BadRequest", "CacheHint", "CounterAdd", "CounterGet",
    "Delete", "Domain", "Error", "Expire", "Get", "HashAdd", "HashDelete", "HashGet", "HashSet",
    "Internal", "KeyTtl", "ListEnd", "ListPush", "ListRange", "ListRemove", "LogLevel",
    "NoSettings", "Number", "Operation", "Plan", "Policy", "Rank", "Replies", "Request", "Score",
    "S64", "ScoredMember", "Script", "Set", "SetAdd", "SetContains", "SetCount", "SetIfAbsent",
    "SetMembers", "SetRemove", "Step", "StreamAdd", "U32", "U64", "Value", "ZsetAdd", "ZsetCondition",
    "ZsetCount", "ZsetIncr", "ZsetRange", "ZsetRemove", "ZsetScore", "ZsetTrim", "export", "log",
]
