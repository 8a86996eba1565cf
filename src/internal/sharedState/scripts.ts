/**
 * The Lua scripts the Redis-backed state runs (each one atomic on the server).
 */

/**
 * `@effect/experimental`'s token bucket (RateLimiter/Redis, MIT), unchanged, so a process using that store
 * directly with the same key shares the bucket. KEYS[1] the bucket; ARGV: tokens, refill ms, limit, now (ms),
 * overflow ("1": the count may go below zero, which is how "delay" reserves a later slot).
 */
export const tokenBucket = `
local key = KEYS[1]
local last_refill_key = key .. ":refill"
local tokens = tonumber(ARGV[1])
local refill_ms = tonumber(ARGV[2])
local limit = tonumber(ARGV[3])
local now = tonumber(ARGV[4])
local overflow = ARGV[5] == "1"
local current = tonumber(redis.call("GET", key))
local last_refill = tonumber(redis.call("GET", last_refill_key))

if not current then
  current = limit
  last_refill = now
  redis.call("SET", key, current)
  redis.call("SET", last_refill_key, last_refill)
end

local elapsed = now - last_refill
local refill_amount = math.floor(elapsed / refill_ms)
if refill_amount > 0 then
  current = math.min(current + refill_amount, limit)
  last_refill = last_refill + (refill_amount * refill_ms)
  redis.call("SET", last_refill_key, last_refill)
end

local next = current - tokens
if next < 0 and not overflow then
  redis.call("SET", key, current)
  return next
end

redis.call("SET", key, next)
return next
`

/**
 * Takes a permit: KEYS[1] a sorted set of permit ids scored by lease end (server time, ms); ARGV: id, max,
 * lease ms. Expired leases are dropped first, so a crashed holder's permit comes back when its lease ends; the
 * set itself expires with the last lease. Returns 1 when granted (or already held), 0 when all are taken.
 */
export const acquirePermit = `
local key = KEYS[1]
local id = ARGV[1]
local max = tonumber(ARGV[2])
local lease = tonumber(ARGV[3])
local t = redis.call("TIME")
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call("ZREMRANGEBYSCORE", key, "-inf", now)
if not redis.call("ZSCORE", key, id) and redis.call("ZCARD", key) >= max then
  return 0
end
redis.call("ZADD", key, now + lease, id)
redis.call("PEXPIRE", key, lease)
return 1
`

/**
 * Extends a held permit's lease: KEYS[1] the set, ARGV: id, lease ms. Returns 0 when the permit was lost (its
 * lease ended while Redis could not be reached).
 */
export const renewPermit = `
local key = KEYS[1]
local id = ARGV[1]
local lease = tonumber(ARGV[2])
if not redis.call("ZSCORE", key, id) then
  return 0
end
local t = redis.call("TIME")
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call("ZADD", key, now + lease, id)
redis.call("PEXPIRE", key, lease)
return 1
`
