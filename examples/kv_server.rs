//! A Redis-compatible key-value server on the [`RespCommands`] codec (RESP, each command
//! decoded into one [`Command`], with no allocation for a small one): `redis-cli` and
//! `redis-benchmark` work against it.
//!
//! ```sh
//! cargo run --release --example kv_server -- --addr 127.0.0.1:6380
//! redis-cli -p 6380 set greeting hello       # OK
//! redis-cli -p 6380 get greeting             # "hello"
//! redis-benchmark -p 6380 -t ping,set,get -n 100000 -q
//! ```
//!
//! Commands (names in any case, errors worded as Redis words them):
//!
//! | command | reply |
//! |---|---|
//! | `PING [message]` | `PONG`, or the message |
//! | `ECHO message` | the message |
//! | `GET key` | the value, or nil |
//! | `SET key value [EX seconds \| PX milliseconds \| KEEPTTL] [NX \| XX]` | `OK`, or nil when `NX`/`XX` stops it |
//! | `DEL key [key ...]`, `EXISTS key [key ...]` | how many keys were removed / exist |
//! | `INCR key` | the new value; the key's TTL is kept |
//! | `EXPIRE key seconds` | 1, or 0 if there is no such key; seconds ≤ 0 delete the key |
//! | `TTL key`, `PTTL key` | seconds / milliseconds left, -1 without expiry, -2 without key |
//! | `KEYS pattern` | the keys that match a glob (`*`, `?`, `[a-z]`, `[^a]`, `\x`) |
//! | `DBSIZE`, `FLUSHALL [ASYNC \| SYNC]` | the number of keys / `OK` |
//! | `CONFIG GET parameter [parameter ...]` | `save` (`""`) and `appendonly` (`no`), which `redis-benchmark` asks for |
//! | `QUIT` | `OK`, then the connection closes gracefully |
//!
//! The store is shared by every connection: `--shards N` hash maps, each behind its own
//! mutex, so connections that touch different keys rarely wait for each other.
//!
//! Expiry is driven by the timing wheel: each key with a TTL has exactly one pending O(1)
//! timer that removes it at its deadline, so a key nobody reads again does not stay in
//! memory. The timer's id lives in the key's entry, and whatever replaces or removes the TTL
//! cancels it: `SET` without `KEEPTTL`, `EXPIRE`, `DEL`, `FLUSHALL`, and the key's own
//! expiry. Memory therefore grows with the keys, not with the commands: 200 000 `EXPIRE`s on
//! one key leave one timer, not 200 000. A command that reads a key in the instant between its
//! deadline and its timer's run also treats it as absent (and removes it).
//!
//! Input that breaks the protocol gets Redis' answer, `-ERR Protocol error: ...`, and the
//! connection then closes gracefully (reply, FIN, wait for the peer's EOF). So does a command
//! over the [`Resp`] codec's limits, refused before anything is allocated for it: 1 MiB per
//! command (its arguments, each counted with 64 bytes of overhead, so a `SET` of a value up to
//! about 1 MiB fits), 512 MiB per argument (Redis' own), 64 KiB per inline command.
//!
//! Flags:
//!
//! * `--addr HOST:PORT`: where to listen (default `127.0.0.1:6380`; port 0 picks a free one).
//! * `--shards N`: hash maps in the store (default 16; 1 means one map behind one mutex).
//! * `--max-connections N`: connections open at once (default 10000, Redis' `maxclients`).
//! * `--frame-timeout SECS`: close a connection whose client has begun a command and not
//!   finished it within SECS seconds: a peer that trickles a command byte by byte (slowloris),
//!   holding a thread and a buffer for as long as it likes (fractions allowed; `0` turns it
//!   off; default: the library's, 30 s). Time between commands does not count: an idle
//!   client stays connected, as with Redis' default `timeout 0`.
//!
//! The first line on stdout is `listening on ADDR`, with the real bound address; then the
//! server runs until SIGINT or SIGTERM
//! stops it gracefully (exit code 0 once its clients are done; a second signal: at once).

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::io::{self, Write};
use std::process::ExitCode;
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

use threadnet::{
    codec::{Command, ProtocolError, Reply, Resp, RespCommands},
    idle::DEFAULT_FRAME_TIMEOUT,
    signal,
    timer::TimerId,
    ConnOptions, Connection, Handler, ServerHandle, TcpServer, TimingWheel,
};

const USAGE: &str = "usage: kv_server [--addr HOST:PORT] [--shards N] [--max-connections N]
            [--frame-timeout SECS]
  --addr HOST:PORT       listen address (default 127.0.0.1:6380; port 0 picks a free port)
  --shards N             hash maps in the store, each with its own lock (default 16)
  --max-connections N    most connections open at once (default 10000)
  --frame-timeout SECS   close a connection whose client began a command and did not finish
                         it within SECS (slowloris); 0 = off (default: the library's, 30)";

/// How long a connection that is closing (after `QUIT` or a protocol error) waits for the
/// peer to close its side once our reply and FIN are out.
/// How long connections get to finish after SIGINT/SIGTERM.
const STOP_DEADLINE: Duration = Duration::from_secs(10);

const CLOSE_DEADLINE: Duration = Duration::from_secs(1);

// ---------------------------------------------------------------------------------------------
// The store

/// A value and, if it has one, the instant it expires and the one timer that removes it then.
struct Entry {
    /// Shared with the replies of `GET`s in flight: a `GET` takes a reference, not a copy.
    value: Arc<[u8]>,
    expires: Option<Instant>,
    /// Pending while `expires` is set (and only then): cancelled by whatever replaces or
    /// removes the entry or its TTL, so a key never has more than one.
    timer: Option<TimerId>,
}

impl Entry {
    /// An entry without a TTL.
    fn new(value: Arc<[u8]>) -> Entry {
        Entry {
            value,
            expires: None,
            timer: None,
        }
    }

    fn is_expired(&self, now: &mut Now) -> bool {
        self.expires.is_some_and(|t| now.get() >= t)
    }

    /// Drops the TTL and cancels its timer.
    fn persist(&mut self) {
        self.expires = None;
        if let Some(id) = self.timer.take() {
            TimingWheel::global().cancel(id);
        }
    }
}

impl Drop for Entry {
    /// An entry that leaves the store (replaced, deleted, flushed, expired) takes its timer
    /// with it: the timer holds a copy of the key, and must not outlive the entry.
    fn drop(&mut self) {
        self.persist();
    }
}

/// The current instant, read from the clock at most once per command, and only if a key with
/// an expiry is looked at.
struct Now(Option<Instant>);

impl Now {
    fn new() -> Now {
        Now(None)
    }

    fn get(&mut self) -> Instant {
        *self.0.get_or_insert_with(Instant::now)
    }
}

type Map = HashMap<Vec<u8>, Entry>;

/// The key space, shared by every connection: `shards` maps, a key's shard chosen by its hash.
pub struct Store {
    /// This store, for the expiry timers (which must not keep it alive).
    me: Weak<Store>,
    shards: Box<[Mutex<Map>]>,
    /// Picks the shard: a fast hash, seeded per store. Each map has its own SipHash with
    /// other keys, so a shard's keys do not all fall into the same buckets of its map.
    pick: ShardHasher,
}

/// The hash that picks a key's shard: FxHash (rustc's hasher: per 8-byte word, xor, rotate,
/// multiply), seeded with random bits. About 10 instructions for a short key where SipHash
/// takes about 100; the map itself still hashes with SipHash. A fast hash is fine here and
/// not in the maps: keys made to collide can only make one shard's lock busier (16 shards),
/// while in a map they would make every lookup in a bucket slow (hash flooding), which
/// std's keyed SipHash is there to prevent.
struct ShardHasher {
    seed: u64,
}

impl ShardHasher {
    fn new() -> ShardHasher {
        ShardHasher {
            seed: RandomState::new().hash_one(0u64),
        }
    }

    /// The hash of `key`.
    fn hash(&self, key: &[u8]) -> u64 {
        const K: u64 = 0x51_7c_c1_b7_27_22_0a_95;
        let mix = |h: u64, word: u64| (h.rotate_left(5) ^ word).wrapping_mul(K);
        let mut h = mix(self.seed, key.len() as u64);
        let mut words = key.chunks_exact(8);
        for w in &mut words {
            h = mix(h, u64::from_le_bytes(w.try_into().expect("8 bytes")));
        }
        let mut tail = [0u8; 8];
        tail[..words.remainder().len()].copy_from_slice(words.remainder());
        h = mix(h, u64::from_le_bytes(tail));
        // The multiply leaves the low bits the least mixed: fold the high ones in.
        h ^ (h >> 32)
    }
}

impl Store {
    /// An empty store of `shards` maps (at least one).
    pub fn new(shards: usize) -> Arc<Store> {
        Arc::new_cyclic(|me| Store {
            me: me.clone(),
            shards: (0..shards.max(1)).map(|_| Mutex::default()).collect(),
            pick: ShardHasher::new(),
        })
    }

    /// Gives `entry` (the entry of `key`, its shard locked by the caller) the deadline `at`:
    /// its old timer, if any, is cancelled and one new timer removes the key at `at` if its
    /// deadline is still `at` then. Active expiry, driven by the process's timing wheel, so a
    /// key nobody reads again does not stay in memory; one timer per key at most, so memory
    /// does not grow with the commands that set TTLs.
    fn expire_at(&self, key: &[u8], entry: &mut Entry, at: Instant) {
        entry.persist();
        let store = self.me.clone();
        let key = key.to_vec();
        let id = TimingWheel::global().at(at, move || {
            if let Some(store) = store.upgrade() {
                let mut map = store.shard(&key);
                if map.get(&key).is_some_and(|e| e.expires == Some(at)) {
                    // Its own timer is running: nothing to cancel.
                    if let Some(mut e) = map.remove(&key) {
                        e.timer = None;
                    }
                }
            }
        });
        entry.expires = Some(at);
        entry.timer = Some(id);
    }

    /// The map that holds `key`, locked.
    fn shard(&self, key: &[u8]) -> MutexGuard<'_, Map> {
        let i = (self.pick.hash(key) % self.shards.len() as u64) as usize;
        lock(&self.shards[i])
    }

    /// Visits every shard in turn, locked.
    fn each_shard(&self, mut f: impl FnMut(&mut Map)) {
        for shard in self.shards.iter() {
            f(&mut lock(shard));
        }
    }
}

/// Locks a shard. A panic while it was held cannot leave a map half-updated (every update is
/// one `HashMap` call), so a poisoned lock is used as it is.
fn lock(m: &Mutex<Map>) -> MutexGuard<'_, Map> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The live entry of `key`: an expired one is removed and reported absent.
fn live<'m>(map: &'m mut Map, key: &[u8], now: &mut Now) -> Option<&'m mut Entry> {
    // The wheel removes a key at its deadline (`Store::expire_at`); this catches a key read
    // in the instant between its deadline and its timer's run.
    if map.get(key)?.is_expired(now) {
        map.remove(key);
        return None;
    }
    map.get_mut(key)
}

// ---------------------------------------------------------------------------------------------
// Commands

/// A command's arguments, all in one buffer (no allocation for a small command); `args[0]`
/// is its name.
type Args = Command;

const NOT_AN_INTEGER: &str = "ERR value is not an integer or out of range";
const SYNTAX: &str = "ERR syntax error";

fn err(text: &'static str) -> Reply {
    Reply::error(text)
}

/// Runs one command against the store and returns its reply. `args` is not empty.
pub fn execute(store: &Store, args: &Args) -> Reply {
    type Run = fn(&Store, &Args) -> Reply;
    let mut upper = [0u8; 16];
    let name = match args[0].len() {
        n @ 1..=16 => {
            upper[..n].copy_from_slice(args.name());
            upper[..n].make_ascii_uppercase();
            &upper[..n]
        }
        _ => &[],
    };
    // Arity as Redis counts it, the name included: n exactly, or -n for at least n.
    let (arity, run): (i32, Run) = match name {
        b"GET" => (2, get),
        b"SET" => (-3, set),
        b"PING" => (-1, ping),
        b"ECHO" => (2, |_, a| Reply::Bulk(a[1].to_vec())),
        b"DEL" => (-2, del),
        b"EXISTS" => (-2, exists),
        b"INCR" => (2, incr),
        b"EXPIRE" => (3, expire),
        b"TTL" => (2, |s, a| ttl(s, a, 1000)),
        b"PTTL" => (2, |s, a| ttl(s, a, 1)),
        b"KEYS" => (2, keys),
        b"DBSIZE" => (1, dbsize),
        b"FLUSHALL" => (-1, flushall),
        b"CONFIG" => (-2, config),
        b"QUIT" => (-1, |_, _| Reply::ok()),
        _ => return unknown_command(args),
    };
    let n = args.len() as i32;
    let fits = if arity >= 0 { n == arity } else { n >= -arity };
    if !fits || (name == b"PING" && n > 2) {
        let name = String::from_utf8_lossy(name).to_ascii_lowercase();
        return Reply::error(format!(
            "ERR wrong number of arguments for '{name}' command"
        ));
    }
    run(store, args)
}

/// Redis' words: `unknown command 'foo', with args beginning with: 'a' 'b' `, at most 128
/// characters of the name and of the arguments, CR and LF turned into spaces.
fn unknown_command(args: &Args) -> Reply {
    let shown = |b: &[u8], max: usize| {
        let s = String::from_utf8_lossy(&b[..b.len().min(max)]).into_owned();
        s.replace(['\r', '\n'], " ")
    };
    let mut list = String::new();
    for a in args.iter().skip(1) {
        if list.len() >= 128 {
            break;
        }
        list.push_str(&format!("'{}' ", shown(a, 128 - list.len())));
    }
    Reply::error(format!(
        "ERR unknown command '{}', with args beginning with: {list}",
        shown(args.name(), 128)
    ))
}

fn ping(_: &Store, args: &Args) -> Reply {
    match args.get(1) {
        Some(message) => Reply::Bulk(message.to_vec()),
        None => Reply::simple("PONG"),
    }
}

fn get(store: &Store, args: &Args) -> Reply {
    let key = &args[1];
    let mut map = store.shard(key);
    // One lookup; the lock is held for it and a reference to the value (no copy), not for
    // the reply, which is written from the shared bytes.
    let value = match map.get(key) {
        Some(e) if !e.is_expired(&mut Now::new()) => Arc::clone(&e.value),
        Some(_) => {
            map.remove(key);
            return Reply::Null;
        }
        None => return Reply::Null,
    };
    drop(map);
    Reply::Shared(value)
}

/// When a `SET` applies and what becomes of the key's TTL.
struct SetOptions {
    expires: Option<Instant>,
    keep_ttl: bool,
    /// `NX`: only if the key does not exist. `XX`: only if it does.
    only_if: Option<bool>,
}

/// Puts `value` in `slot`: in place when no `GET` holds the old value and it has the same
/// length (no allocation), else as a new shared value.
fn replace(slot: &mut Arc<[u8]>, value: &[u8]) {
    match Arc::get_mut(slot) {
        Some(old) if old.len() == value.len() => old.copy_from_slice(value),
        _ => *slot = Arc::from(value),
    }
}

fn set(store: &Store, args: &Args) -> Reply {
    let (key, value) = (&args[1], &args[2]);
    if args.len() == 3 {
        // No options: whatever was there (live or expired, with a TTL or not) is replaced,
        // with one lookup.
        let mut map = store.shard(key);
        match map.get_mut(key) {
            Some(old) => {
                old.persist();
                replace(&mut old.value, value);
            }
            None => {
                map.insert(key.to_vec(), Entry::new(Arc::from(value)));
            }
        }
        return Reply::ok();
    }
    let mut now = Now::new();
    let opts: Vec<&[u8]> = args.iter().skip(3).collect();
    let options = match set_options(&opts, &mut now) {
        Ok(o) => o,
        Err(reply) => return reply,
    };
    let mut map = store.shard(key);
    let old = live(&mut map, key, &mut now);
    if options
        .only_if
        .is_some_and(|exists| exists != old.is_some())
    {
        return Reply::Null;
    }
    if let Some(old) = old.filter(|_| options.keep_ttl) {
        // The TTL and its timer stay as they are.
        replace(&mut old.value, value);
        return Reply::ok();
    }
    let mut entry = Entry::new(Arc::from(value));
    if let Some(at) = options.expires {
        store.expire_at(key, &mut entry, at);
    }
    // The old entry, if any, is dropped here, and its timer with it.
    map.insert(key.to_vec(), entry);
    Reply::ok()
}

fn set_options(opts: &[&[u8]], now: &mut Now) -> Result<SetOptions, Reply> {
    let mut o = SetOptions {
        expires: None,
        keep_ttl: false,
        only_if: None,
    };
    let mut has_ttl_option = false;
    let mut i = 0;
    while i < opts.len() {
        let opt = opts[i].to_ascii_uppercase();
        match opt.as_slice() {
            b"NX" | b"XX" if o.only_if.is_none() => o.only_if = Some(opt == b"XX"),
            b"KEEPTTL" if !has_ttl_option => {
                has_ttl_option = true;
                o.keep_ttl = true;
            }
            b"EX" | b"PX" if !has_ttl_option && i + 1 < opts.len() => {
                has_ttl_option = true;
                i += 1;
                let n = Resp::parse_integer(opts[i]).ok_or(err(NOT_AN_INTEGER))?;
                let unit = if opt == b"EX" { 1000 } else { 1 };
                o.expires = Some(
                    deadline(n, unit, now)
                        .ok_or(err("ERR invalid expire time in 'set' command"))?,
                );
            }
            _ => return Err(err(SYNTAX)),
        }
        i += 1;
    }
    Ok(o)
}

/// `now` plus `n` units of `unit_ms` milliseconds; `None` if that is not positive or
/// overflows, as Redis refuses it.
fn deadline(n: i64, unit_ms: i64, now: &mut Now) -> Option<Instant> {
    let ms = n.checked_mul(unit_ms).filter(|&ms| ms > 0)?;
    now.get().checked_add(Duration::from_millis(ms as u64))
}

fn del(store: &Store, args: &Args) -> Reply {
    let mut now = Now::new();
    let removed = args
        .iter()
        .skip(1)
        .filter(|key| {
            let mut map = store.shard(key);
            map.remove(*key).is_some_and(|e| !e.is_expired(&mut now))
        })
        .count();
    Reply::Integer(removed as i64)
}

fn exists(store: &Store, args: &Args) -> Reply {
    let mut now = Now::new();
    let found = args
        .iter()
        .skip(1)
        .filter(|key| live(&mut store.shard(key), key, &mut now).is_some())
        .count();
    Reply::Integer(found as i64)
}

fn incr(store: &Store, args: &Args) -> Reply {
    let key = &args[1];
    let mut map = store.shard(key);
    let mut now = Now::new();
    let entry = live(&mut map, key, &mut now);
    let old = match &entry {
        Some(e) => match Resp::parse_integer(&e.value) {
            Some(n) => n,
            None => return err(NOT_AN_INTEGER),
        },
        None => 0,
    };
    let Some(new) = old.checked_add(1) else {
        return err("ERR increment or decrement would overflow");
    };
    let value = new.to_string().into_bytes();
    match entry {
        // In place: the TTL and its timer are kept.
        Some(e) => replace(&mut e.value, &value),
        None => {
            map.insert(key.to_vec(), Entry::new(value.into()));
        }
    }
    Reply::Integer(new)
}

fn expire(store: &Store, args: &Args) -> Reply {
    let Some(seconds) = Resp::parse_integer(&args[2]) else {
        return err(NOT_AN_INTEGER);
    };
    let Some(ms) = seconds.checked_mul(1000) else {
        return err("ERR invalid expire time in 'expire' command");
    };
    let key = &args[1];
    let mut map = store.shard(key);
    let mut now = Now::new();
    let Some(entry) = live(&mut map, key, &mut now) else {
        return Reply::Integer(0);
    };
    if ms <= 0 {
        // A deadline already past deletes the key, as in Redis.
        map.remove(key);
        return Reply::Integer(1);
    }
    match now.get().checked_add(Duration::from_millis(ms as u64)) {
        Some(t) => {
            store.expire_at(key, entry, t);
            Reply::Integer(1)
        }
        None => err("ERR invalid expire time in 'expire' command"),
    }
}

/// `TTL` (`unit_ms` 1000, rounded as Redis rounds) or `PTTL` (1).
fn ttl(store: &Store, args: &Args, unit_ms: u128) -> Reply {
    let key = &args[1];
    let mut map = store.shard(key);
    let mut now = Now::new();
    let left = match live(&mut map, key, &mut now) {
        None => return Reply::Integer(-2),
        Some(Entry { expires: None, .. }) => return Reply::Integer(-1),
        Some(Entry {
            expires: Some(t), ..
        }) => t.saturating_duration_since(now.get()).as_millis(),
    };
    let left = (left + unit_ms / 2) / unit_ms;
    Reply::Integer(i64::try_from(left).unwrap_or(i64::MAX))
}

fn keys(store: &Store, args: &Args) -> Reply {
    let pattern = &args[1];
    let mut now = Now::new();
    let mut found = Vec::new();
    store.each_shard(|map| {
        map.retain(|_, e| !e.is_expired(&mut now));
        found.extend(
            map.keys()
                .filter(|k| glob(pattern, k))
                .map(|k| Reply::Bulk(k.clone())),
        );
    });
    Reply::Array(found)
}

fn dbsize(store: &Store, _: &Args) -> Reply {
    let mut n = 0;
    store.each_shard(|map| n += map.len());
    Reply::Integer(n as i64)
}

fn flushall(store: &Store, args: &Args) -> Reply {
    match args.get(1).map(|a| a.to_ascii_uppercase()) {
        None => {}
        Some(mode) if args.len() == 2 && (mode == b"ASYNC" || mode == b"SYNC") => {}
        Some(_) => return err(SYNTAX),
    }
    store.each_shard(|map| *map = Map::new());
    Reply::ok()
}

/// The configuration `CONFIG GET` reports: no snapshots, no append-only file. That is the
/// truth (nothing is persisted), and what `redis-benchmark` asks for when it starts.
const CONFIG: [(&str, &str); 2] = [("save", ""), ("appendonly", "no")];

fn config(_: &Store, args: &Args) -> Reply {
    if !args[1].eq_ignore_ascii_case(b"GET") {
        let sub = String::from_utf8_lossy(&args[1]).replace(['\r', '\n'], " ");
        return Reply::error(format!("ERR unknown subcommand '{sub}'. Try CONFIG HELP."));
    }
    if args.len() < 3 {
        return err("ERR wrong number of arguments for 'config|get' command");
    }
    let mut pairs = Vec::new();
    for (name, value) in CONFIG {
        if args
            .iter()
            .skip(2)
            .any(|p| glob(&p.to_ascii_lowercase(), name.as_bytes()))
        {
            pairs.push(Reply::bulk(name));
            pairs.push(Reply::bulk(value));
        }
    }
    Reply::Array(pairs)
}

/// Redis' glob match (`stringmatchlen`, case-sensitive): `*` any run, `?` any byte, `[abc]`,
/// `[^abc]`, `[a-z]` a class, `\x` the byte `x`. Greedy with one backtrack point, so it costs
/// at most pattern × text steps, however many `*` the pattern has.
fn glob(pattern: &[u8], text: &[u8]) -> bool {
    let (mut p, mut t) = (0, 0);
    // After a `*`: where the pattern resumes, and the text position the star has reached.
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        if pattern.get(p) == Some(&b'*') {
            p += 1;
            star = Some((p, t));
            continue;
        }
        if let Some(next) = match_one(pattern, p, text[t]) {
            p = next;
            t += 1;
            continue;
        }
        // Mismatch: let the last star take one more byte, or fail.
        let Some((sp, st)) = star else {
            return false;
        };
        star = Some((sp, st + 1));
        p = sp;
        t = st + 1;
    }
    pattern[p..].iter().all(|&c| c == b'*')
}

/// If the pattern element at `p` (not a `*`) matches `c`, the index of the next element.
fn match_one(pattern: &[u8], p: usize, c: u8) -> Option<usize> {
    match *pattern.get(p)? {
        b'?' => Some(p + 1),
        b'\\' if p + 1 < pattern.len() => (pattern[p + 1] == c).then_some(p + 2),
        b'[' => {
            let mut i = p + 1;
            let negate = pattern.get(i) == Some(&b'^');
            if negate {
                i += 1;
            }
            let mut hit = false;
            while i < pattern.len() && pattern[i] != b']' {
                if pattern[i] == b'\\' && i + 1 < pattern.len() {
                    hit |= pattern[i + 1] == c;
                    i += 2;
                } else if i + 2 < pattern.len() && pattern[i + 1] == b'-' && pattern[i + 2] != b']'
                {
                    let (lo, hi) = (
                        pattern[i].min(pattern[i + 2]),
                        pattern[i].max(pattern[i + 2]),
                    );
                    hit |= (lo..=hi).contains(&c);
                    i += 3;
                } else {
                    hit |= pattern[i] == c;
                    i += 1;
                }
            }
            // An unclosed class ends with the pattern, as in Redis.
            (hit != negate).then_some((i + 1).min(pattern.len()))
        }
        literal => (literal == c).then_some(p + 1),
    }
}

// ---------------------------------------------------------------------------------------------
// Connections

/// One connection: runs its commands, in order, on its reader thread.
struct Session {
    store: Arc<Store>,
    /// After `QUIT` or a protocol error: the connection is closing, later input is ignored.
    closing: bool,
}

impl Handler<RespCommands> for Session {
    fn on_message(&mut self, conn: &Connection<RespCommands>, req: Result<Args, ProtocolError>) {
        if self.closing {
            return;
        }
        let reply = match req {
            Ok(args) => {
                self.closing = args[0].eq_ignore_ascii_case(b"QUIT");
                execute(&self.store, &args)
            }
            Err(e) => {
                self.closing = true;
                e.reply()
            }
        };
        // From the reader thread, `send` writes the reply straight to the socket. If the peer
        // reads nothing for the whole send timeout, give up on it.
        if let Err(e) = conn.send(reply) {
            if e.is_timeout() {
                conn.close();
            }
        }
        if self.closing {
            // Our reply, then our FIN; the peer's EOF (or the deadline) ends the connection.
            conn.shutdown(CLOSE_DEADLINE);
        }
    }
}

/// Starts a server on `addr` with a new, empty store of `shards` maps, and the library's
/// connection options (its frame timeout, 30 s, among them).
///
/// # Errors
///
/// Binding `addr` fails.
pub fn start(
    addr: &str,
    shards: usize,
    max_connections: usize,
) -> io::Result<ServerHandle<RespCommands>> {
    start_with(addr, shards, max_connections, ConnOptions::new())
}

/// [`start`], with `options` for every connection.
///
/// # Errors
///
/// Binding `addr` fails.
pub fn start_with(
    addr: &str,
    shards: usize,
    max_connections: usize,
    options: ConnOptions,
) -> io::Result<ServerHandle<RespCommands>> {
    let store = Store::new(shards);
    TcpServer::builder()
        .addr(addr)
        .max_connections(max_connections)
        .options(options)
        .start(
            Resp::new().commands(),
            move |_: &Connection<RespCommands>| Session {
                store: Arc::clone(&store),
                closing: false,
            },
        )
}

// ---------------------------------------------------------------------------------------------
// The command line

struct Options {
    addr: String,
    shards: usize,
    max_connections: usize,
    frame_timeout: Duration,
}

/// Parses the command line: `Ok(None)` for `--help`, `Err` with what is wrong.
fn parse_args(mut args: impl Iterator<Item = String>) -> Result<Option<Options>, String> {
    let mut parsed = Options {
        addr: "127.0.0.1:6380".to_string(),
        shards: 16,
        max_connections: 10_000,
        frame_timeout: DEFAULT_FRAME_TIMEOUT,
    };
    while let Some(flag) = args.next() {
        let mut value = || args.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "-h" | "--help" => return Ok(None),
            "--addr" => parsed.addr = value()?,
            "--shards" => parsed.shards = number(&flag, &value()?)?.max(1),
            "--max-connections" => parsed.max_connections = number(&flag, &value()?)?,
            "--frame-timeout" => parsed.frame_timeout = seconds(&flag, &value()?)?,
            _ => return Err(format!("unknown flag {flag:?}")),
        }
    }
    Ok(Some(parsed))
}

fn number(flag: &str, value: &str) -> Result<usize, String> {
    value
        .parse()
        .map_err(|_| format!("{flag}: not a number: {value:?}"))
}

/// A number of seconds, fractions allowed, zero included.
fn seconds(flag: &str, value: &str) -> Result<Duration, String> {
    value
        .parse::<f64>()
        .ok()
        .and_then(|s| Duration::try_from_secs_f64(s).ok())
        .ok_or_else(|| format!("{flag}: not a number of seconds: {value:?}"))
}

fn main() -> ExitCode {
    let options = match parse_args(std::env::args().skip(1)) {
        Ok(Some(options)) => options,
        Ok(None) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(why) => {
            eprintln!("kv_server: {why}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    // Zero turns the frame timeout off.
    let conn_options = ConnOptions::new().frame_timeout(options.frame_timeout);
    let server = match start_with(
        &options.addr,
        options.shards,
        options.max_connections,
        conn_options,
    ) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("kv_server: cannot listen on {}: {e}", options.addr);
            return ExitCode::FAILURE;
        }
    };
    // The signal handlers go in before the line below: a script may send a signal as soon
    // as it has read it.
    let stop = match signal::StopOnSignals::new(STOP_DEADLINE).arm() {
        Ok(stop) => stop,
        Err(e) => {
            eprintln!("kv_server: cannot handle signals: {e}");
            return ExitCode::FAILURE;
        }
    };

    // Scripts wait for this line to learn the port, so it goes out at once.
    let mut stdout = io::stdout().lock();
    let announced =
        writeln!(stdout, "listening on {}", server.local_addr()).and_then(|()| stdout.flush());
    drop(stdout);
    if let Err(e) = announced {
        eprintln!("kv_server: cannot write to stdout: {e}");
        return ExitCode::FAILURE;
    }
    // SIGINT/SIGTERM stop the server gracefully (a second one: at once), then exit code 0.
    if let Err(e) = stop.run(&server) {
        eprintln!("kv_server: cannot handle signals: {e}");
        server.wait();
    }
    ExitCode::SUCCESS
}
