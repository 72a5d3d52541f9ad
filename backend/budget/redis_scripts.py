"""The Lua scripts of ``RedisBudget`` (each runs alone in Redis, so each is one atomic step).

The ``seeded`` marker holds the epoch: a random token written by the seed that (re)filled Redis
from the database. Scripts that change spend take the caller's epoch as their last argument and
answer ``{-1}`` when the marker is missing (Redis restarted empty: seed it) or ``{-2}`` when it
names another epoch (Redis restarted and someone else seeded it: the caller owes the new epoch
what it settled into the old one and the database does not hold yet). See README.md.

Amounts go to INCRBY/DECRBY as the caller's strings: Lua would print big numbers as 1e+15.
"""

from __future__ import annotations

UNSEEDED = -1
STALE_EPOCH = -2

# KEYS[1] seeded marker, then 4 keys per cap: spent, resv, holds, previous period's spent.
# ARGV: now, hold expiry, hold member, units, resv/holds ttl, then per cap: cap units, rollover;
# last: the caller's epoch.
# Returns {1} booked, {-1} unseeded, {-2} other epoch, {0, cap index, used, limit} refused.
# Booking twice is a no-op (the hold is there), so a call whose answer was lost can be resent.
RESERVE_LUA = """
local epoch = redis.call('GET', KEYS[1])
if not epoch then return {-1} end
if epoch ~= ARGV[#ARGV] then return {-2} end
if redis.call('ZSCORE', KEYS[4], ARGV[3]) then return {1} end
local units = tonumber(ARGV[4])
for i = 1, (#KEYS - 1) / 4 do
  local b = 4 * (i - 1)
  local spent_k, resv_k, holds_k, prev_k = KEYS[b + 2], KEYS[b + 3], KEYS[b + 4], KEYS[b + 5]
  local expired = redis.call('ZRANGEBYSCORE', holds_k, '-inf', ARGV[1])
  if #expired > 0 then
    for _, member in ipairs(expired) do
      redis.call('DECRBY', resv_k, string.match(member, ':(%d+)$'))
    end
    redis.call('ZREMRANGEBYSCORE', holds_k, '-inf', ARGV[1])
  end
  local cap = tonumber(ARGV[4 + 2 * i])
  local limit = 0
  if cap > 0 then
    limit = cap
    if ARGV[5 + 2 * i] == '1' then
      local unused = cap - tonumber(redis.call('GET', prev_k) or '0')
      if unused < 0 then unused = 0 end
      if unused > cap then unused = cap end
      limit = cap + unused
    end
  end
  local used = tonumber(redis.call('GET', spent_k) or '0')
  used = used + tonumber(redis.call('GET', resv_k) or '0')
  if used + units > limit then return {0, i, used, limit} end
end
for i = 1, (#KEYS - 1) / 4 do
  local b = 4 * (i - 1)
  redis.call('INCRBY', KEYS[b + 3], ARGV[4])
  redis.call('EXPIRE', KEYS[b + 3], ARGV[5])
  redis.call('ZADD', KEYS[b + 4], ARGV[2], ARGV[3])
  redis.call('EXPIRE', KEYS[b + 4], ARGV[5])
end
return {1}
"""

# KEYS[1] seeded marker, KEYS[2] done marker, then 3 keys per hold: spent, resv, holds.
# ARGV: hold member, reserved units, actual units, spent ttl, done ttl, the caller's epoch.
# Returns {1} applied, {0} already applied, {-1} unseeded / {-2} other epoch (only when
# charging: a release is right in any epoch, there is nothing to lose).
SETTLE_LUA = """
local charge = tonumber(ARGV[3]) > 0
if charge then
  local epoch = redis.call('GET', KEYS[1])
  if not epoch then return {-1} end
  if epoch ~= ARGV[6] then return {-2} end
  if not redis.call('SET', KEYS[2], '1', 'NX', 'EX', ARGV[5]) then return {0} end
end
for b = 3, #KEYS, 3 do
  if redis.call('ZREM', KEYS[b + 2], ARGV[1]) == 1 then
    redis.call('DECRBY', KEYS[b + 1], ARGV[2])
  end
  if charge then
    redis.call('INCRBY', KEYS[b], ARGV[3])
    redis.call('EXPIRE', KEYS[b], ARGV[4])
  end
end
return {1}
"""

# Fills an empty Redis from the database, unless someone did already.
# KEYS[1] seeded marker, then spent keys. ARGV: new epoch, spent ttl, then units per spent key.
# Returns the epoch now in force (the caller's, or the one already there).
SEED_LUA = """
local epoch = redis.call('GET', KEYS[1])
if epoch then return epoch end
for i = 2, #KEYS do
  redis.call('SET', KEYS[i], ARGV[i + 1], 'EX', ARGV[2])
end
redis.call('SET', KEYS[1], ARGV[1])
return ARGV[1]
"""

# Brings one process's share into a new epoch: spend it settled that the seed did not read, and
# the holds of its requests in flight. Applied once per done key (a retry after a lost answer
# sends the same key).
# KEYS[1] seeded marker, KEYS[2] done key, then n spent keys, then (resv, holds) per hold.
# ARGV: epoch, spent ttl, holds ttl, n, n units, then per hold: member, expiry, units.
# Returns {1} applied, {0} already applied, {-1} unseeded, {-2} other epoch.
RESYNC_LUA = """
local epoch = redis.call('GET', KEYS[1])
if not epoch then return {-1} end
if epoch ~= ARGV[1] then return {-2} end
if not redis.call('SET', KEYS[2], '1', 'NX', 'EX', ARGV[3]) then return {0} end
local n = tonumber(ARGV[4])
for i = 1, n do
  redis.call('INCRBY', KEYS[2 + i], ARGV[4 + i])
  redis.call('EXPIRE', KEYS[2 + i], ARGV[2])
end
local a = 5 + n
for k = 3 + n, #KEYS, 2 do
  if redis.call('ZADD', KEYS[k + 1], ARGV[a + 1], ARGV[a]) == 1 then
    redis.call('INCRBY', KEYS[k], ARGV[a + 2])
  end
  redis.call('EXPIRE', KEYS[k], ARGV[3])
  redis.call('EXPIRE', KEYS[k + 1], ARGV[3])
  a = a + 3
end
return {1}
"""

# Sliding-window rate limits (backend/budget/ratelimit.py has the rule and its bound): one HASH
# per limit, field = unix second, value = what was admitted in that second. Redis's own clock
# (TIME) stamps every admission, so instances with skewed clocks share one window.
# KEYS: one hash per limit. ARGV: per limit, its limit and what this request needs of it.
# Returns {1, now_ms, second, used_1, oldest_1, ..., used_n, oldest_n} (used after booking,
# oldest counted second or -1), or {0, limit index, used, retry_ms, now_ms} (nothing booked).
RATE_ACQUIRE_LUA = """
local t = redis.call('TIME')
local sec = tonumber(t[1])
local now_ms = sec * 1000 + math.floor(tonumber(t[2]) / 1000)
local horizon = sec - 60
local used, oldest = {}, {}
for i = 1, #KEYS do
  local flat = redis.call('HGETALL', KEYS[i])
  local total, old, stale, live = 0, -1, {}, {}
  for j = 1, #flat, 2 do
    local b = tonumber(flat[j])
    if b < horizon then
      stale[#stale + 1] = flat[j]
    else
      local n = tonumber(flat[j + 1])
      total = total + n
      live[#live + 1] = {b, n}
      if old == -1 or b < old then old = b end
    end
  end
  if #stale > 0 then redis.call('HDEL', KEYS[i], unpack(stale)) end
  local limit, need = tonumber(ARGV[2 * i - 1]), tonumber(ARGV[2 * i])
  if total + need > limit then
    table.sort(live, function(a, b) return a[1] < b[1] end)
    local freed, retry = 0, 61000
    for _, e in ipairs(live) do
      freed = freed + e[2]
      if total - freed + need <= limit then
        retry = (e[1] + 61) * 1000 - now_ms
        break
      end
    end
    return {0, i, total, retry, now_ms}
  end
  used[i], oldest[i] = total, old
end
local out = {1, now_ms, sec}
for i = 1, #KEYS do
  local need = tonumber(ARGV[2 * i])
  if need > 0 then
    redis.call('HINCRBY', KEYS[i], sec, need)
    if oldest[i] == -1 then oldest[i] = sec end
  end
  redis.call('EXPIRE', KEYS[i], 120)
  out[#out + 1] = used[i] + need
  out[#out + 1] = oldest[i]
end
return out
"""

# Settles a token reservation to the real count in the second it was booked in, if that second
# is still in the window. KEYS: token hashes. ARGV: second, delta (real - reserved).
RATE_SETTLE_LUA = """
for i = 1, #KEYS do
  if redis.call('HEXISTS', KEYS[i], ARGV[1]) == 1 then
    redis.call('HINCRBY', KEYS[i], ARGV[1], ARGV[2])
  end
end
return 1
"""
