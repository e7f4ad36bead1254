#!lua name=sav
--[[
SAV Functions library. Every state change of the platform is one call to a
function below, so that a change and the messages it emits are applied
together or not at all (messaging.md, step 1).

Rules every function follows:
  * read and validate everything first, write after: Lua in Redis has no rollback;
  * KEYS holds the keys known before the call; the keys a function derives
    (a ticket allocated inside the call) are built from ARGV[1], the shard
    prefix "<prefix>:{s<N>}:", so every key of a call shares one hash tag;
  * an input message is applied once: its dedup key is checked first and set last.
]]

local LIB_VERSION = '7'

-- Appends one timeline entry to a ticket.
local function timeline_add(prefix, tid, at, event, state, actor, detail)
  redis.call('RPUSH', prefix .. 'timeline:' .. tid,
    cjson.encode({at = tonumber(at), event = event, state = state, actor = actor, detail = detail or ''}))
end

-- Appends an event to a destination's outbox stream.
local function outbox_add(outbox, msg_id, msg_type, tid, at, source, body)
  redis.call('XADD', outbox, '*', 'id', msg_id, 'type', msg_type, 'ticket', tid, 'at', at, 'src', source,
    'body', body)
end

-- Moves a ticket to a new state and keeps the per-state index (state:<name>, scored by the time of entry)
-- and the product's open-repair marker in step with it.
local function set_state(prefix, tid, tkey, old, new, now)
  redis.call('HSET', tkey, 'state', new, 'updated_at', now, 'state_since', now)
  if old then redis.call('ZREM', prefix .. 'state:' .. old, tid) end
  redis.call('ZADD', prefix .. 'state:' .. new, now, tid)
  -- The 30-day limit (C5) is about the repair: once the ticket is ready (or ends), it no longer runs.
  if new == 'ready' or new == 'closed' or new == 'cancelled' then redis.call('ZREM', prefix .. 'legal_repairs', tid) end
  if new == 'closed' or new == 'cancelled' then
    -- A collected (or cancelled) product is no longer waiting: it leaves the unclaimed list.
    if redis.call('ZREM', prefix .. 'unclaimed', tid) == 1 then redis.call('HSET', tkey, 'unclaimed', '0') end
    local serial = redis.call('HGET', tkey, 'serial')
    local okey = prefix .. 'product:' .. serial .. ':open_repair'
    if serial and redis.call('GET', okey) == tid then redis.call('DEL', okey) end
  end
end

-- Spare parts. Per centre and part: stock:<c> (on hand, free), stock:<c>:reserved, :received, :consumed, :adjusted,
-- so that received + adjusted - consumed - reserved = on hand at all times. Per ticket: parts_need:<T> and
-- parts_held:<T> (part -> quantity). Tickets short of a part wait in backorder:<c>:<part>, scored by the ticket's
-- creation time: stock is handed out first come, first served.

-- Hands out free stock of one part at one centre to the waiting tickets in order; returns the tickets served.
local function parts_serve(prefix, centre, ref)
  local skey, queue = prefix .. 'stock:' .. centre, prefix .. 'backorder:' .. centre .. ':' .. ref
  local served = {}
  for _, tid in ipairs(redis.call('ZRANGE', queue, 0, -1)) do
    local on_hand = tonumber(redis.call('HGET', skey, ref) or 0)
    if on_hand <= 0 then break end
    local need = tonumber(redis.call('HGET', prefix .. 'parts_need:' .. tid, ref) or 0)
    local held = tonumber(redis.call('HGET', prefix .. 'parts_held:' .. tid, ref) or 0)
    local take = math.min(need - held, on_hand)
    if take > 0 then
      redis.call('HINCRBY', skey, ref, -take)
      redis.call('HINCRBY', skey .. ':reserved', ref, take)
      redis.call('HINCRBY', prefix .. 'parts_held:' .. tid, ref, take)
    end
    if held + take >= need then
      redis.call('ZREM', queue, tid)
      served[#served + 1] = tid
    end
  end
  return served
end

-- 1 if every part a ticket needs is held.
local function parts_complete(prefix, tid)
  local need = redis.call('HGETALL', prefix .. 'parts_need:' .. tid)
  for i = 1, #need, 2 do
    if tonumber(redis.call('HGET', prefix .. 'parts_held:' .. tid, need[i]) or 0) < tonumber(need[i + 1]) then
      return 0
    end
  end
  return 1
end

-- Serves the waiting tickets of each listed part; returns the tickets (other than skip) that became complete.
local function parts_serve_all(prefix, centre, refs, skip)
  local completed = {}
  for _, ref in ipairs(refs) do
    for _, t in ipairs(parts_serve(prefix, centre, ref)) do
      if t ~= skip and parts_complete(prefix, t) == 1 then completed[#completed + 1] = t end
    end
  end
  return completed
end

-- Gives a ticket's reservations back to stock (used = 0) or records them as consumed (used = 1) and forgets
-- its needs. Returns the parts it held; the caller serves the waiting tickets once it has queued any new need,
-- so that a corrected verdict keeps its place in line.
local function parts_settle(prefix, tid, centre, used)
  local held = redis.call('HGETALL', prefix .. 'parts_held:' .. tid)
  local need = redis.call('HGETALL', prefix .. 'parts_need:' .. tid)
  local skey = prefix .. 'stock:' .. centre
  for i = 1, #held, 2 do
    local ref, q = held[i], tonumber(held[i + 1])
    redis.call('HINCRBY', skey .. ':reserved', ref, -q)
    if used == 1 then
      redis.call('HINCRBY', skey .. ':consumed', ref, q)
    else
      redis.call('HINCRBY', skey, ref, q)
    end
  end
  for i = 1, #need, 2 do redis.call('ZREM', prefix .. 'backorder:' .. centre .. ':' .. need[i], tid) end
  redis.call('DEL', prefix .. 'parts_held:' .. tid, prefix .. 'parts_need:' .. tid)
  local refs = {}
  for i = 1, #held, 2 do refs[#refs + 1] = held[i] end
  return refs
end

-- Collects ARGV[from..] as a flat field/value list.
local function tail(args, from)
  local out = {}
  for i = from, #args do out[#out + 1] = args[i] end
  return out
end

-- Creates a ticket (the caller validated it) and emits TicketReceived to diagnostics. Returns its id,
-- or nil and a refusal when the product is not the customer's or already has an open repair ticket.
local function create_ticket(prefix, seq, outbox, shard, nshards, year, now, kind, body, fields, customer, serial)
  local ckey, pkey = prefix .. 'customer:' .. customer, prefix .. 'product:' .. serial
  if redis.call('EXISTS', ckey) == 0 then return nil, 'no customer ' .. customer end
  local owner = redis.call('HGET', pkey, 'owner')
  if not owner then return nil, 'no product with serial ' .. serial end
  if owner ~= customer then return nil, 'product ' .. serial .. ' belongs to ' .. owner .. ', not ' .. customer end
  local okey = pkey .. ':open_repair'
  if kind == 'repair' then
    local open = redis.call('GET', okey)
    if open then return nil, 'product ' .. serial .. ' already has an open repair ticket ' .. open end
  end
  local n = redis.call('INCR', seq)
  local tid = string.format('T-%s-%06d', year, (n - 1) * nshards + shard + 1)
  local tkey = prefix .. 'ticket:' .. tid
  local opened_by = 'intake'
  for i = 1, #fields - 1, 2 do
    if fields[i] == 'opened_by' then opened_by = fields[i + 1] end
  end
  -- set_state's fields in the same HSET: a new ticket has no earlier state to leave.
  redis.call('HSET', tkey, 'id', tid, 'created_at', now, 'state', 'received', 'updated_at', now, 'state_since', now,
    unpack(fields))
  redis.call('ZADD', prefix .. 'state:received', now, tid)
  redis.call('ZADD', prefix .. 'tickets', now, tid)
  redis.call('ZADD', ckey .. ':tickets', now, tid)
  redis.call('ZADD', pkey .. ':tickets', now, tid)
  if kind == 'repair' then redis.call('SET', okey, tid) end
  timeline_add(prefix, tid, now, 'ticket.received', 'received', opened_by, '')
  outbox_add(outbox, tid .. '/ticket.received', '100', tid, now, 'intake', body)
  return tid
end

--[[
ticket_open: store a new ticket and emit TicketReceived to diagnostics.
KEYS: 1 request dedup key, 2 ticket sequence of the year, 3 outbox to diagnostics
ARGV: 1 shard prefix, 2 shard, 3 shard count, 4 year, 5 now ms, 6 dedup ttl s,
      7 TicketReceived body, 8 customer id, 9 serial, 10 kind, 11.. ticket hash field/value pairs
Returns {ticket id, replayed 0|1} or an error reply "REFUSED <reason>".
]]
local function ticket_open(keys, args)
  local prev = redis.call('GET', keys[1])
  if prev then return {prev, 1} end
  local tid, why = create_ticket(args[1], keys[2], keys[3], tonumber(args[2]), tonumber(args[3]), args[4], args[5],
    args[10], args[7], tail(args, 11), args[8], args[9])
  if not tid then return redis.error_reply('REFUSED ' .. why) end
  redis.call('SET', keys[1], tid, 'EX', tonumber(args[6]))
  return {tid, 0}
end

--[[
event_apply: record what a service concluded from an event, move the ticket
forward and emit the next event, once.
KEYS: 1 dedup key of the input message, 2 outbox of the next service ('' if none... always passed)
ARGV: 1 shard prefix, 2 ticket id, 3 now ms, 4 dedup ttl s, 5 section name (hash suffix),
      6 state required for the transition ('' = any), 7 new state ('' = unchanged),
      8 timeline event, 9 actor, 10 timeline detail, 11 out message type ('' = emit nothing),
      12 out body, 13 '1' to refuse when the section's status is already 'decided' (an estimate must never
      overwrite the technician's decision), 14.. section field/value pairs
Returns 'applied', 'duplicate' or 'retry:<reason>' (ticket not there yet, or decided meanwhile).
]]
local function event_apply(keys, args)
  if redis.call('EXISTS', keys[1]) == 1 then return 'duplicate' end
  local prefix, tid, now, ttl = args[1], args[2], args[3], tonumber(args[4])
  local section, need, new_state = args[5], args[6], args[7]
  local tkey = prefix .. 'ticket:' .. tid
  local state = redis.call('HGET', tkey, 'state')
  if not state then return 'retry:ticket ' .. tid .. ' not found' end
  -- An event that arrives after the ticket was cancelled or closed changes nothing and goes no further.
  if state == 'cancelled' or state == 'closed' then
    redis.call('SET', keys[1], '1', 'EX', ttl)
    return 'applied'
  end
  if args[13] == '1' and redis.call('HGET', prefix .. section .. ':' .. tid, 'status') == 'decided' then
    return 'retry:' .. section .. ' decided meanwhile'
  end
  local fields = tail(args, 14)
  if #fields > 0 then redis.call('HSET', prefix .. section .. ':' .. tid, unpack(fields)) end
  if new_state ~= '' and (need == '' or state == need) then
    set_state(prefix, tid, tkey, state, new_state, now)
    state = new_state
  else
    redis.call('HSET', tkey, 'updated_at', now)
  end
  timeline_add(prefix, tid, now, args[8], state, args[9], args[10])
  if args[11] ~= '' then
    outbox_add(keys[2], tid .. '/' .. args[8], args[11], tid, now, args[9], args[12])
  end
  redis.call('SET', keys[1], '1', 'EX', ttl)
  return 'applied'
end

--[[
notification_record: store the rendered messages of one notification event, once per
(ticket, event, channel, version).
KEYS: 1 dedup key of the input message
ARGV: 1 shard prefix, 2 ticket id, 3 now ms, 4 dedup ttl s, 5 event, 6 count of notifications,
      then per notification 11 values: id, channel, status, recipient, subject, body, lang, version,
      SMS coding (gsm7, ucs2 or ''), SMS parts ('' for e-mail), urgent ('1': an SMS that goes in quiet hours)
Returns 'applied' or 'duplicate'.
]]
local function notification_record(keys, args)
  if redis.call('EXISTS', keys[1]) == 1 then return 'duplicate' end
  local prefix, tid, now, ttl, event = args[1], args[2], args[3], tonumber(args[4]), args[5]
  local tkey = prefix .. 'ticket:' .. tid
  local state = redis.call('HGET', tkey, 'state')
  if not state then return 'retry:ticket ' .. tid .. ' not found' end
  local count = tonumber(args[6])
  local recorded, ids = {}, {}
  for i = 0, count - 1 do
    local b = 7 + i * 11
    local nid = args[b]
    local nkey = prefix .. 'notif:' .. nid
    -- The notification id is (ticket, event, channel, version): a second event
    -- carrying the same id never records (and later never sends) twice.
    if redis.call('EXISTS', nkey) == 0 then
      redis.call('HSET', nkey, 'id', nid, 'ticket', tid, 'event', event, 'channel', args[b + 1],
        'status', args[b + 2], 'recipient', args[b + 3], 'subject', args[b + 4], 'body', args[b + 5],
        'lang', args[b + 6], 'version', args[b + 7], 'sms_coding', args[b + 8], 'sms_parts', args[b + 9], 'urgent', args[b + 10],
        'at', now)
      redis.call('ZADD', prefix .. 'notifs:all', now, nid)
      -- A message to send waits in its channel's queue; the sender claims it from there.
      if args[b + 2] == 'queued' then
        redis.call('ZADD', prefix .. (args[b + 1] == 'sms' and 'sms:queue' or 'mail:queue'), now, nid)
      end
      recorded[#recorded + 1] = args[b + 1]
      ids[#ids + 1] = nid
    end
  end
  if #ids > 0 then redis.call('RPUSH', prefix .. 'notifs:' .. tid, unpack(ids)) end
  if #recorded > 0 then
    timeline_add(prefix, tid, now, 'notification.recorded', state, 'notification', table.concat(recorded, ','))
  end
  redis.call('SET', keys[1], '1', 'EX', ttl)
  return 'applied'
end

-- HGETALL of each hash named prefix..kind..':'..id for the ids of a list or zset.
local function hashes_of(prefix, kind, ids)
  local out = {}
  for _, id in ipairs(ids) do out[#out + 1] = redis.call('HGETALL', prefix .. kind .. ':' .. id) end
  return out
end

--[[
ticket_view (read-only): everything `ticket show` displays, in one round trip.
KEYS: 1 ticket hash
ARGV: 1 shard prefix, 2 ticket id
Returns nil if absent, else {ticket, prediagnosis, coverage, timeline, {notification...}, customer, {complaint...},
verdict, quote, invoice, packed} (quote and invoice without their documents; packed: the ticket's packed value, nil
when it is not packed, whose records the caller merges under the live ones, see ticket_pack).
]]
local function ticket_view(keys, args)
  local ticket = redis.call('HGETALL', keys[1])
  if #ticket == 0 then return nil end
  local prefix, tid = args[1], args[2]
  local customer = redis.call('HGET', keys[1], 'customer_id') or ''
  local packed = redis.call('GET', prefix .. 'packed:' .. tid)
  if packed then
    -- Bookkeeping of the packed ticket: its coverage, with that basis, is in the packed value.
    local shown = {}
    for i = 1, #ticket, 2 do
      if ticket[i] ~= 'coverage_basis' then shown[#shown + 1], shown[#shown + 2] = ticket[i], ticket[i + 1] end
    end
    ticket = shown
  end
  return {ticket, redis.call('HGETALL', prefix .. 'prediag:' .. tid), redis.call('HGETALL', prefix .. 'coverage:' .. tid),
    redis.call('LRANGE', prefix .. 'timeline:' .. tid, 0, -1),
    hashes_of(prefix, 'notif', redis.call('LRANGE', prefix .. 'notifs:' .. tid, 0, -1)),
    redis.call('HGETALL', prefix .. 'customer:' .. customer),
    hashes_of(prefix, 'complaint', redis.call('LRANGE', keys[1] .. ':complaints', 0, -1)),
    redis.call('HGETALL', prefix .. 'verdict:' .. tid),
    redis.call('HMGET', prefix .. 'quote:' .. tid, 'version', 'status', 'valid_until', 'gross_cents'),
    redis.call('HMGET', prefix .. 'invoice:' .. (redis.call('HGET', keys[1], 'invoice_id') or ''), 'id', 'status',
      'total_cents', 'balance_cents', 'due_on'),
    packed}
end

-- The fields of a ticket shown in lists.
local TICKET_SUMMARY = {'id', 'state', 'outcome', 'kind', 'channel', 'customer_id', 'serial', 'model', 'centre',
  'created_at', 'sla_due_on', 'requested_on', 'unclaimed'}

local function ticket_summaries(prefix, ids)
  local out = {}
  for _, id in ipairs(ids) do
    out[#out + 1] = redis.call('HMGET', prefix .. 'ticket:' .. id, unpack(TICKET_SUMMARY))
  end
  return out
end

--[[
customer_view (read-only): a customer, their products and tickets.
KEYS: 1 customer hash
ARGV: 1 shard prefix
Returns nil if absent, else {customer, {product...}, {ticket summary...}, summary field names}.
]]
local function customer_view(keys, args)
  local customer = redis.call('HGETALL', keys[1])
  if #customer == 0 then return nil end
  local serials = redis.call('SMEMBERS', keys[1] .. ':products')
  table.sort(serials)
  return {customer, hashes_of(args[1], 'product', serials),
    ticket_summaries(args[1], redis.call('ZRANGE', keys[1] .. ':tickets', 0, -1)), TICKET_SUMMARY}
end

--[[
product_view (read-only): a unit's full service history.
KEYS: 1 product hash
ARGV: 1 shard prefix
Returns nil if absent, else {product, ownership history, {contract...}, {ticket summary...}, summary field names}.
]]
local function product_view(keys, args)
  local product = redis.call('HGETALL', keys[1])
  if #product == 0 then return nil end
  return {product, redis.call('LRANGE', keys[1] .. ':history', 0, -1),
    hashes_of(args[1], 'contract', redis.call('LRANGE', keys[1] .. ':contracts', 0, -1)),
    ticket_summaries(args[1], redis.call('ZRANGE', keys[1] .. ':tickets', 0, -1)), TICKET_SUMMARY}
end

--[[
ticket_list (read-only): ticket summaries from an index, newest first.
KEYS: 1 index zset (tickets, state:<s>, customer:<c>:tickets)
ARGV: 1 shard prefix, 2 how many to read at most
Returns {{ticket summary...}, summary field names}.
]]
local function ticket_list(keys, args)
  return {ticket_summaries(args[1], redis.call('ZREVRANGE', keys[1], 0, tonumber(args[2]) - 1)), TICKET_SUMMARY}
end

--[[
ticket_contact (read-only): what notification needs to reach a ticket's customer, in one round trip.
KEYS: 1 ticket hash
ARGV: 1 shard prefix
Returns nil if the ticket is absent, else {ticket, customer} (flat hashes; the customer's is empty when the
ticket names no customer or the record is gone).
]]
local function ticket_contact(keys, args)
  local ticket = redis.call('HGETALL', keys[1])
  if #ticket == 0 then return nil end
  local cid = redis.call('HGET', keys[1], 'customer_id')
  if not cid or cid == '' then return {ticket, {}} end
  return {ticket, redis.call('HGETALL', args[1] .. 'customer:' .. cid)}
end

--[[
outbox_ack: an entry was acknowledged by its destination: forget it.
KEYS: 1 outbox stream
ARGV: 1 group, 2.. entry ids
Returns the number of entries removed.
]]
local function outbox_ack(keys, args)
  local ids = tail(args, 2)
  redis.call('XACK', keys[1], args[1], unpack(ids))
  return redis.call('XDEL', keys[1], unpack(ids))
end

--[[
outbox_dead: move an entry that cannot be delivered to the dead-letter stream.
KEYS: 1 outbox stream, 2 dead-letter stream
ARGV: 1 group, 2 entry id, 3 destination, 4 reason, 5 attempts, 6 now ms
Returns 1 if moved, 0 if the entry was already gone.
]]
local function outbox_dead(keys, args)
  local entries = redis.call('XRANGE', keys[1], args[2], args[2])
  if #entries == 0 then return 0 end
  local fields = entries[1][2]
  redis.call('XADD', keys[2], '*', 'dest', args[3], 'reason', args[4], 'attempts', args[5], 'at', args[6],
    'outbox', keys[1], unpack(fields))
  redis.call('XACK', keys[1], args[1], args[2])
  redis.call('XDEL', keys[1], args[2])
  return 1
end

--[[
catalog_store: publish a validated catalog and create the stock of parts and centres that have none yet
(live stock is never overwritten by a catalog).
KEYS: 1 catalog key, 2 catalog version key
ARGV: 1 shard prefix, 2 catalog JSON, 3 only if absent (1|0), then triples centre, part, quantity
Returns the catalog version now in force.
]]
local function catalog_store(keys, args)
  if args[3] == '1' and redis.call('EXISTS', keys[1]) == 1 then return tonumber(redis.call('GET', keys[2]) or 0) end
  redis.call('SET', keys[1], args[2])
  local v = redis.call('INCR', keys[2])
  for i = 4, #args, 3 do
    local skey = args[1] .. 'stock:' .. args[i]
    if redis.call('HSETNX', skey, args[i + 1], args[i + 2]) == 1 then
      redis.call('HINCRBY', skey .. ':received', args[i + 1], args[i + 2])
    end
  end
  return v
end

-- Keeps customers:phone:<number> (the customers reachable at a number) in step with a customer's phone, so
-- that an SMS reply ("STOP") finds who sent it. Other records are left alone.
local function phone_index(rkey, old)
  local prefix, id = string.match(rkey, '^(.*)customer:([^:]+)$')
  if not prefix then return end
  local new = redis.call('HGET', rkey, 'phone')
  if old == new then return end
  if old and old ~= '' then redis.call('SREM', prefix .. 'customers:phone:' .. old, id) end
  if new and new ~= '' then redis.call('SADD', prefix .. 'customers:phone:' .. new, id) end
end

--[[
record_create: create a numbered record (customer, contract) once per request.
KEYS: 1 request dedup key, 2 sequence key, 3 (optional) a record that must exist, e.g. the contract's product
ARGV: 1 shard prefix, 2 now ms, 3 dedup ttl s, 4 id format ('C-%06d'), 5 record kind ('customer'),
      6 index zset name ('' = none), 7 its score ('' = now), 8 parent list key suffix ('' = none),
      9 refusal when KEYS[3] is missing, 10.. field/value pairs
Returns {id, replayed} or "REFUSED <reason>".
]]
local function record_create(keys, args)
  local prev = redis.call('GET', keys[1])
  if prev then return {prev, 1} end
  if keys[3] and redis.call('EXISTS', keys[3]) == 0 then return redis.error_reply('REFUSED ' .. args[9]) end
  local prefix, now = args[1], args[2]
  local id = string.format(args[4], redis.call('INCR', keys[2]))
  redis.call('HSET', prefix .. args[5] .. ':' .. id, 'id', id, 'created_at', now, 'updated_at', now,
    unpack(tail(args, 10)))
  phone_index(prefix .. args[5] .. ':' .. id, nil)
  if args[6] ~= '' then redis.call('ZADD', prefix .. args[6], args[7] ~= '' and args[7] or now, id) end
  if args[8] ~= '' then redis.call('RPUSH', prefix .. args[8], id) end
  redis.call('SET', keys[1], id, 'EX', tonumber(args[3]))
  return {id, 0}
end

--[[
complaint_open: a customer's written complaint about a ticket, acknowledged to the customer.
KEYS: 1 request dedup key, 2 ticket hash, 3 outbox to notification
ARGV: 1 shard prefix, 2 ticket id, 3 now ms, 4 dedup ttl s, 5 deadline score (yyyymmdd), 6 actor,
      7 notice body, 8 complaint id (numbered by the caller: complaint numbers may have gaps), 9.. fields
Returns {complaint id, replayed} or "NOTFOUND".
]]
local function complaint_open(keys, args)
  local prev = redis.call('GET', keys[1])
  if prev then return {prev, 1} end
  local prefix, tid, now, id = args[1], args[2], args[3], args[8]
  local state = redis.call('HGET', keys[2], 'state')
  if not state then return redis.error_reply('NOTFOUND no such record') end
  redis.call('HSET', prefix .. 'complaint:' .. id, 'id', id, 'ticket', tid, 'status', 'open', 'created_at', now,
    'updated_at', now, unpack(tail(args, 9)))
  redis.call('RPUSH', keys[2] .. ':complaints', id)
  redis.call('ZADD', prefix .. 'complaints:open', args[5], id)
  timeline_add(prefix, tid, now, 'complaint.opened', state, args[6], id)
  outbox_add(keys[3], tid .. '/complaint_acknowledged/' .. id, '103', tid, now, 'intake', args[7])
  redis.call('SET', keys[1], id, 'EX', tonumber(args[4]))
  return {id, 0}
end

--[[
complaint_resolve: close a complaint with its resolution, tell the customer.
KEYS: 1 request dedup key, 2 complaint hash, 3 outbox to notification
ARGV: 1 shard prefix, 2 now ms, 3 dedup ttl s, 4 actor, 5 notice body, 6.. field/value pairs
Returns {status, replayed} or "NOTFOUND" / "CONFLICT <status>".
]]
local function complaint_resolve(keys, args)
  local prev = redis.call('GET', keys[1])
  if prev then return {prev, 1} end
  local prefix, now = args[1], args[2]
  local c = redis.call('HMGET', keys[2], 'id', 'ticket', 'status')
  if not c[1] then return redis.error_reply('NOTFOUND no such record') end
  if c[3] == 'resolved' then return redis.error_reply('CONFLICT resolved') end
  redis.call('HSET', keys[2], 'status', 'resolved', 'resolved_at', now, 'updated_at', now, unpack(tail(args, 6)))
  redis.call('ZREM', prefix .. 'complaints:open', c[1])
  local state = redis.call('HGET', prefix .. 'ticket:' .. c[2], 'state')
  timeline_add(prefix, c[2], now, 'complaint.resolved', state, args[4], c[1])
  outbox_add(keys[3], c[2] .. '/complaint_resolved/' .. c[1], '103', c[2], now, 'intake', args[5])
  redis.call('SET', keys[1], 'resolved', 'EX', tonumber(args[3]))
  return {'resolved', 0}
end

--[[
maintenance_advance: a maintenance contract's visit n has its ticket: move to visit n+1 (or finish).
KEYS: 1 contract hash, 2 zset of contracts by next visit (yyyymmdd)
ARGV: 1 visit number n, 2 its ticket id, 3 next visit date ('' = contract finished), 4 its score
Returns 1 if advanced, 0 if visit n was already recorded.
]]
local function maintenance_advance(keys, args)
  local done = tonumber(redis.call('HGET', keys[1], 'visits_done') or 0)
  if done >= tonumber(args[1]) then return 0 end
  local id = redis.call('HGET', keys[1], 'id')
  redis.call('HSET', keys[1], 'visits_done', args[1], 'last_visit_ticket', args[2], 'next_visit_on', args[3])
  if args[3] == '' then
    redis.call('ZREM', keys[2], id)
  else
    redis.call('ZADD', keys[2], args[4], id)
  end
  return 1
end

--[[
record_update: change fields of an existing record.
KEYS: 1 record hash
ARGV: 1 now ms, 2.. field/value pairs
Returns 1, or 0 when the record does not exist.
]]
local function record_update(keys, args)
  if redis.call('EXISTS', keys[1]) == 0 then return 0 end
  local old = redis.call('HGET', keys[1], 'phone')
  redis.call('HSET', keys[1], 'updated_at', args[1], unpack(tail(args, 2)))
  phone_index(keys[1], old)
  return 1
end

-- Takes one notification out of every queue and turn: its customer was erased, it must not go.
local function notification_withdraw(prefix, nid, nkey, status, recipient)
  local queue = redis.call('HGET', nkey, 'channel') == 'sms' and 'sms' or 'mail'
  redis.call('ZREM', prefix .. queue .. ':queue', nid)
  redis.call('ZREM', prefix .. queue .. ':sending:failed', nid)
  if redis.call('HGET', prefix .. 'sms:busy', recipient or '') == nid then
    redis.call('HDEL', prefix .. 'sms:busy', recipient)
  end
  -- One being sent at this instant goes: its sender records the outcome over the erased fields.
  if status == 'queued' or status == 'deferred' or status == 'failed' then
    redis.call('HSET', nkey, 'status', 'erased', 'last_answer', 'not sent: the customer was erased')
  end
end

--[[
customer_erase: a customer's right to erasure (RGPD art. 17) as pseudonymisation. Name, phone and e-mail leave
the customer record and every message sent or due to them (recipient, subject and text); their consents are
withdrawn and their messages not sent yet never go. Invoices keep the name they were issued to, with every
legally required mention (Code de commerce L123-22: kept ten years); tickets, complaints and products keep the
customer id. Refused while one of their tickets is open or one of their invoices unpaid: the contract is still
being performed. Each of their tickets' timelines records who erased it.
KEYS: 1 request dedup key, 2 customer hash
ARGV: 1 shard prefix, 2 now ms, 3 dedup ttl s, 4 customer id, 5 pseudonym, 6 actor
Returns {customer id, replayed, notifications erased, tickets, 1 if erased before (then nothing changed)}, or an
error NOTFOUND / REFUSED, or "PACKED <ticket>": a packed ticket's messages are in its packed value, which Lua cannot
rewrite: the caller unpacks it (ticket_unpack) and calls again.
]]
local function customer_erase(keys, args)
  local prev = redis.call('GET', keys[1])
  if prev then
    local n, t, before = string.match(prev, '^(%d+),(%d+),(%d)$')
    return {args[4], 1, tonumber(n), tonumber(t), tonumber(before)}
  end
  local prefix, now, cid, actor = args[1], args[2], args[4], args[6]
  local c = redis.call('HMGET', keys[2], 'id', 'phone', 'erased_at')
  if not c[1] then return redis.error_reply('NOTFOUND no customer ' .. cid) end
  if c[3] then
    redis.call('SET', keys[1], '0,0,1', 'EX', tonumber(args[3]))
    return {cid, 0, 0, 0, 1}
  end
  local tids = redis.call('ZRANGE', prefix .. 'customer:' .. cid .. ':tickets', 0, -1)
  local open, unpaid, packed = {}, {}, nil
  for _, tid in ipairs(tids) do
    if redis.call('EXISTS', prefix .. 'packed:' .. tid) == 1 then packed = tid end
    local state = redis.call('HGET', prefix .. 'ticket:' .. tid, 'state')
    if state ~= 'closed' and state ~= 'cancelled' then open[#open + 1] = tid .. ' (' .. tostring(state) .. ')' end
    for _, kind in ipairs({'repair', 'diagnostic'}) do
      local inv = redis.call('GET', prefix .. 'invoice_for:' .. tid .. ':' .. kind)
      if inv and redis.call('ZSCORE', prefix .. 'invoices:unpaid', inv) then unpaid[#unpaid + 1] = inv end
    end
  end
  if #open > 0 then
    return redis.error_reply('REFUSED ' .. cid .. ' has open tickets: ' .. table.concat(open, ', ', 1, math.min(#open, 3))
      .. ': close or cancel them first')
  end
  if #unpaid > 0 then
    return redis.error_reply('REFUSED ' .. cid .. ' has unpaid invoices: ' .. table.concat(unpaid, ', ', 1,
      math.min(#unpaid, 3)) .. ': they must be paid or credited first')
  end
  if packed then return redis.error_reply('PACKED ' .. packed) end
  if c[2] and c[2] ~= '' then redis.call('SREM', prefix .. 'customers:phone:' .. c[2], cid) end
  redis.call('HDEL', keys[2], 'phone', 'email')
  redis.call('HSET', keys[2], 'name', args[5], 'consent_sms', '0', 'consent_email', '0', 'consent_marketing', '0',
    'erased_at', now, 'erased_by', actor, 'updated_at', now)
  local erased = 0
  for _, tid in ipairs(tids) do
    for _, nid in ipairs(redis.call('LRANGE', prefix .. 'notifs:' .. tid, 0, -1)) do
      local nkey = prefix .. 'notif:' .. nid
      local f = redis.call('HMGET', nkey, 'status', 'recipient')
      notification_withdraw(prefix, nid, nkey, f[1], f[2])
      redis.call('HSET', nkey, 'recipient', '', 'subject', '', 'body', '', 'erased_at', now)
      erased = erased + 1
    end
    timeline_add(prefix, tid, now, 'customer.erased', redis.call('HGET', prefix .. 'ticket:' .. tid, 'state'), actor,
      'personal data pseudonymised')
  end
  redis.call('SET', keys[1], erased .. ',' .. #tids .. ',0', 'EX', tonumber(args[3]))
  return {cid, 0, erased, #tids, 0}
end

--[[
product_add: register a product (unique serial) to an existing customer.
KEYS: 1 request dedup key, 2 product hash, 3 customer hash
ARGV: 1 now ms, 2 dedup ttl s, 3 serial, 4 customer id, 5.. field/value pairs
Returns {serial, replayed} or an error reply "REFUSED <reason>".
]]
local function product_add(keys, args)
  if redis.call('GET', keys[1]) then return {args[3], 1} end
  if redis.call('EXISTS', keys[3]) == 0 then return redis.error_reply('REFUSED no customer ' .. args[4]) end
  local owner = redis.call('HGET', keys[2], 'owner')
  if owner then return redis.error_reply('REFUSED serial ' .. args[3] .. ' is already registered to ' .. owner) end
  redis.call('HSET', keys[2], 'serial', args[3], 'owner', args[4], 'created_at', args[1], unpack(tail(args, 5)))
  redis.call('RPUSH', keys[2] .. ':history',
    cjson.encode({at = tonumber(args[1]), event = 'registered', to = args[4]}))
  redis.call('SADD', keys[3] .. ':products', args[3])
  redis.call('SET', keys[1], args[3], 'EX', tonumber(args[2]))
  return {args[3], 0}
end

--[[
product_transfer: give a product to another customer, keeping the ownership history.
KEYS: 1 request dedup key, 2 product hash, 3 new owner's customer hash
ARGV: 1 shard prefix, 2 now ms, 3 dedup ttl s, 4 new owner id, 5 transfer date, 6 note
Returns {serial, replayed} or "REFUSED <reason>".
]]
local function product_transfer(keys, args)
  local serial = redis.call('HGET', keys[2], 'serial')
  if redis.call('GET', keys[1]) then return {serial, 1} end
  if not serial then return redis.error_reply('REFUSED no such product') end
  if redis.call('EXISTS', keys[3]) == 0 then return redis.error_reply('REFUSED no customer ' .. args[4]) end
  local old = redis.call('HGET', keys[2], 'owner')
  if old == args[4] then return redis.error_reply('REFUSED ' .. serial .. ' already belongs to ' .. old) end
  redis.call('HSET', keys[2], 'owner', args[4], 'updated_at', args[2])
  redis.call('SREM', args[1] .. 'customer:' .. old .. ':products', serial)
  redis.call('SADD', keys[3] .. ':products', serial)
  redis.call('RPUSH', keys[2] .. ':history', cjson.encode({at = tonumber(args[2]), event = 'transferred', from = old,
    to = args[4], date = args[5], note = args[6]}))
  redis.call('SET', keys[1], serial, 'EX', tonumber(args[3]))
  return {serial, 0}
end

--[[
ticket_step: a lifecycle step decided by the caller (common/lifecycle.c), applied only if the ticket is still
in the state the decision was made on (compare-and-set), with its timeline entry and an optional notice.
KEYS: 1 request dedup key, 2 ticket hash, 3 outbox to notification, 4 outbox to billing
ARGV: 1 shard prefix, 2 ticket id, 3 now ms, 4 dedup ttl s, 5 expected state, 6 new state, 7 timeline event,
      8 actor, 9 detail, 10 notice message id ('' = none), 11 notice body,
      12 parts: '' (untouched), 'consume' (repair done) or 'release' (cancelled, refused, impossible, exchanged),
      13 TicketReady body for billing ('' = none), 14 auxiliary hash written in the same step ('' = none),
      15.. extra ticket field/value pairs, then '--' and the auxiliary hash's field/value pairs
Returns {new state, replayed, tickets whose parts became complete} or "CONFLICT <current state>" / "NOTFOUND".
]]
local function ticket_step(keys, args)
  local prev = redis.call('GET', keys[1])
  if prev then return {prev, 1, {}} end
  local prefix, tid, now = args[1], args[2], args[3]
  local state = redis.call('HGET', keys[2], 'state')
  if not state then return redis.error_reply('NOTFOUND no such record') end
  if state ~= args[5] then return redis.error_reply('CONFLICT ' .. state) end
  local extra, aux, current = {}, {}, nil
  current = extra
  for i = 15, #args do
    if args[i] == '--' then current = aux else current[#current + 1] = args[i] end
  end
  if #extra > 0 then redis.call('HSET', keys[2], unpack(extra)) end
  if args[14] ~= '' and #aux > 0 then redis.call('HSET', prefix .. args[14], unpack(aux)) end
  local completed = {}
  if args[12] ~= '' then
    local centre = redis.call('HGET', keys[2], 'centre')
    completed = parts_serve_all(prefix, centre, parts_settle(prefix, tid, centre, args[12] == 'consume' and 1 or 0), tid)
  end
  set_state(prefix, tid, keys[2], state, args[6], now)
  timeline_add(prefix, tid, now, args[7], args[6], args[8], args[9])
  if args[10] ~= '' then outbox_add(keys[3], args[10], '103', tid, now, args[8], args[11]) end
  if args[13] ~= '' then outbox_add(keys[4], tid .. '/ready/' .. now, '105', tid, now, args[8], args[13]) end
  redis.call('SET', keys[1], args[6], 'EX', tonumber(args[4]))
  return {args[6], 0, completed}
end

--[[
ticket_mark: something happened to a ticket that does not change its state (a reminder, a flag, a complaint),
once per dedup key: fields, a timeline entry, an optional index entry and an optional notice.
KEYS: 1 dedup key, 2 ticket hash, 3 outbox to notification
ARGV: 1 shard prefix, 2 ticket id, 3 now ms, 4 dedup ttl s (0 = forever), 5 timeline event, 6 actor, 7 detail,
      8 notice message id ('' = none), 9 notice body, 10 zset to add the ticket to ('' = none), 11 its score,
      12 hash to write ('' = the ticket), 13.. field/value pairs
Returns 'applied', 'duplicate' or "NOTFOUND".
]]
local function ticket_mark(keys, args)
  if redis.call('EXISTS', keys[1]) == 1 then return 'duplicate' end
  local prefix, tid, now = args[1], args[2], args[3]
  local state = redis.call('HGET', keys[2], 'state')
  if not state then return redis.error_reply('NOTFOUND no such record') end
  local fields = tail(args, 13)
  if #fields > 0 then
    redis.call('HSET', args[12] ~= '' and prefix .. args[12] or keys[2], unpack(fields))
  end
  if args[10] ~= '' then redis.call('ZADD', prefix .. args[10], args[11], tid) end
  timeline_add(prefix, tid, now, args[5], state, args[6], args[7])
  if args[8] ~= '' then outbox_add(keys[3], args[8], '103', tid, now, args[6], args[9]) end
  if tonumber(args[4]) > 0 then
    redis.call('SET', keys[1], '1', 'EX', tonumber(args[4]))
  else
    redis.call('SET', keys[1], '1')
  end
  return 'applied'
end

--[[
coverage_facts (read-only): what the coverage rules need about a ticket, in one round trip.
KEYS: 1 ticket hash
ARGV: 1 shard prefix
Returns nil if absent, else {ticket, product, {contract...}, {{ticket id, basis, outcome, immobilisation_days}...},
coverage} where the fourth list holds the unit's earlier tickets (and those of the unit it replaced), archived ones
included, and coverage is the ticket's own coverage hash (billing reads whether the technician decided already, in
the same call).
]]
local function coverage_facts(keys, args)
  local prefix = args[1]
  local ticket = redis.call('HGETALL', keys[1])
  if #ticket == 0 then return nil end
  local tid = redis.call('HGET', keys[1], 'id')
  local serial = redis.call('HGET', keys[1], 'serial')
  local pkey = prefix .. 'product:' .. serial
  local history = {}
  local unit = serial
  for _ = 1, 5 do
    for _, other in ipairs(redis.call('ZRANGE', prefix .. 'product:' .. unit .. ':tickets', 0, -1)) do
      if other ~= tid then
        -- A packed ticket keeps its coverage basis in its hash (ticket_pack).
        history[#history + 1] = {other, redis.call('HGET', prefix .. 'coverage:' .. other, 'basis') or
          redis.call('HGET', prefix .. 'ticket:' .. other, 'coverage_basis') or '',
          redis.call('HGET', prefix .. 'ticket:' .. other, 'outcome') or '',
          redis.call('HGET', prefix .. 'ticket:' .. other, 'immobilisation_days') or '0'}
      end
    end
    -- Archived tickets left their facts behind (archive_remove): a guarantee's extensions still count them.
    local past = redis.call('HGETALL', prefix .. 'product:' .. unit .. ':past')
    for i = 1, #past, 2 do
      local f = cjson.decode(past[i + 1])
      history[#history + 1] = {past[i], f.basis or '', f.outcome or '', f.immobilisation_days or '0'}
    end
    unit = redis.call('HGET', prefix .. 'product:' .. unit, 'replaces')
    if not unit then break end
  end
  return {ticket, redis.call('HGETALL', pkey),
    hashes_of(prefix, 'contract', redis.call('LRANGE', pkey .. ':contracts', 0, -1)), history,
    redis.call('HGETALL', prefix .. 'coverage:' .. tid)}
end

--[[
verdict_record: the technician's verdict (version n) with its coverage decision, its parts reserved (or
backordered), the ticket's next state and the customer's notice, in one step. A corrected verdict first gives
the previous reservations back.
KEYS: 1 request dedup key, 2 ticket hash, 3 outbox to notification, 4 outbox to billing
ARGV: 1 shard prefix, 2 ticket id, 3 now ms, 4 dedup ttl s, 5 expected "state:verdict version" (a verdict may
      leave the state as it is, so the version is compared too), 6 state if every part is held,
      7 state if a part is missing, 8 actor, 9 timeline detail, 10 notice body if every part is held,
      11 notice body if a part is missing, 12 score in legal_repairs ('' = not under the legal guarantee),
      13 number of parts n, then n pairs part, quantity, then the VerdictRecorded body for billing,
      then verdict field/value pairs, '--', coverage pairs, '--', ticket pairs
Returns {state, replayed, version, {part, short}..., tickets whose parts became complete}.
]]
local function verdict_record(keys, args)
  local prev = redis.call('GET', keys[1])
  if prev then
    local first = cjson.decode(prev)
    return {first.state, 1, first.version, first.missing, {}}
  end
  local prefix, tid, now = args[1], args[2], args[3]
  local state = redis.call('HGET', keys[2], 'state')
  if not state then return redis.error_reply('NOTFOUND no such record') end
  local current = state .. ':' .. (redis.call('HGET', keys[2], 'verdict_version') or '0')
  if current ~= args[5] then return redis.error_reply('CONFLICT ' .. current) end
  local centre = redis.call('HGET', keys[2], 'centre')
  local refs = parts_settle(prefix, tid, centre, 0)
  local created = redis.call('HGET', keys[2], 'created_at')
  local n = tonumber(args[13])
  for i = 0, n - 1 do
    local ref, q = args[14 + 2 * i], tonumber(args[15 + 2 * i])
    redis.call('HINCRBY', prefix .. 'parts_need:' .. tid, ref, q)
    redis.call('ZADD', prefix .. 'backorder:' .. centre .. ':' .. ref, created, tid)
    refs[#refs + 1] = ref
  end
  local completed = parts_serve_all(prefix, centre, refs, tid)
  local missing = {}
  for i = 0, n - 1 do
    local ref = args[14 + 2 * i]
    local short = tonumber(redis.call('HGET', prefix .. 'parts_need:' .. tid, ref)) -
      tonumber(redis.call('HGET', prefix .. 'parts_held:' .. tid, ref) or 0)
    if short > 0 then missing[#missing + 1] = {ref, short} end
  end
  local billing_body = args[14 + 2 * n]
  local sections, current, i = {{}, {}, {}}, 1, 15 + 2 * n
  while i <= #args do
    if args[i] == '--' then current = current + 1 else table.insert(sections[current], args[i]) end
    i = i + 1
  end
  local version = redis.call('HINCRBY', keys[2], 'verdict_version', 1)
  redis.call('DEL', prefix .. 'verdict:' .. tid)
  redis.call('HSET', prefix .. 'verdict:' .. tid, 'version', version, 'at', now, 'by', args[8], unpack(sections[1]))
  redis.call('RPUSH', prefix .. 'verdicts:' .. tid, cjson.encode({version = version, at = tonumber(now), by = args[8],
    fields = sections[1]}))
  redis.call('DEL', prefix .. 'coverage:' .. tid)
  redis.call('HSET', prefix .. 'coverage:' .. tid, 'status', 'decided', 'at', now, unpack(sections[2]))
  if #sections[3] > 0 then redis.call('HSET', keys[2], unpack(sections[3])) end
  if args[12] ~= '' then
    redis.call('ZADD', prefix .. 'legal_repairs', args[12], tid)
  else
    redis.call('ZREM', prefix .. 'legal_repairs', tid)
  end
  local new = #missing > 0 and args[7] or args[6]
  if new ~= state then set_state(prefix, tid, keys[2], state, new, now) end
  timeline_add(prefix, tid, now, 'verdict.recorded', new, args[8], 'v' .. version .. ' ' .. args[9])
  outbox_add(keys[3], tid .. '/diagnosis_done/' .. version, '103', tid, now, args[8], #missing > 0 and args[11] or args[10])
  outbox_add(keys[4], tid .. '/verdict/' .. version, '104', tid, now, args[8], billing_body)
  -- The first answer is kept whole: a retried request gets exactly it back.
  redis.call('SET', keys[1], cjson.encode({state = new, version = version, missing = missing}), 'EX', tonumber(args[4]))
  return {new, 0, version, missing, completed}
end

--[[
parts_move: stock received (delta > 0, counted as received) or adjusted (counted as adjusted) at a centre;
the stock never goes negative; freed stock goes to the waiting tickets in order.
KEYS: 1 request dedup key, 2 the centre's stock hash
ARGV: 1 shard prefix, 2 centre, 3 part, 4 delta, 5 'received' or 'adjusted', 6 dedup ttl s, 7 now ms, 8 reason,
      9 actor
Returns {on hand, replayed, tickets whose parts became complete} or "REFUSED <reason>".
]]
local function parts_move(keys, args)
  local prefix, centre, ref, delta = args[1], args[2], args[3], tonumber(args[4])
  local prev = redis.call('GET', keys[1])
  if prev then
    local first = cjson.decode(prev)
    return {first.on_hand, 1, first.completed}
  end
  local on_hand = tonumber(redis.call('HGET', keys[2], ref) or 0)
  if on_hand + delta < 0 then
    return redis.error_reply('REFUSED only ' .. on_hand .. ' free ' .. ref .. ' at ' .. centre ..
      ' (reserved parts cannot be adjusted away)')
  end
  redis.call('HINCRBY', keys[2], ref, delta)
  redis.call('HINCRBY', keys[2] .. ':' .. args[5], ref, delta)
  redis.call('RPUSH', keys[2] .. ':moves', cjson.encode({at = tonumber(args[7]), part = ref, delta = delta,
    kind = args[5], reason = args[8], by = args[9]}))
  local completed = parts_serve_all(prefix, centre, {ref}, '')
  local after = tonumber(redis.call('HGET', keys[2], ref))
  -- The first answer is kept whole: a retried request gets it back, not the stock of the moment.
  redis.call('SET', keys[1], cjson.encode({on_hand = after, completed = completed}), 'EX', tonumber(args[6]))
  return {after, 0, completed}
end

--[[
parts_stock (read-only): a centre's stock: per part on hand, reserved, received, consumed, adjusted, waiting.
KEYS: 1 the centre's stock hash
ARGV: 1 shard prefix, 2 centre, then the part references to report
]]
local function parts_stock(keys, args)
  local out = {}
  for i = 3, #args do
    local ref = args[i]
    out[#out + 1] = {ref, redis.call('HGET', keys[1], ref) or '0', redis.call('HGET', keys[1] .. ':reserved', ref) or '0',
      redis.call('HGET', keys[1] .. ':received', ref) or '0', redis.call('HGET', keys[1] .. ':consumed', ref) or '0',
      redis.call('HGET', keys[1] .. ':adjusted', ref) or '0',
      redis.call('ZCARD', args[1] .. 'backorder:' .. args[2] .. ':' .. ref)}
  end
  return out
end

--[[
quote_create: the quote (devis) of a verdict version, once; a newer version supersedes the pending one.
KEYS: 1 dedup key of the input message, 2 ticket hash, 3 outbox to notification
ARGV: 1 shard prefix, 2 ticket id, 3 now ms, 4 dedup ttl s, 5 version, 6 expiry score (yyyymmdd), 7 notice body,
      8.. quote field/value pairs (the frozen document)
Returns 'applied', 'duplicate' or "NOTFOUND".
]]
local function quote_create(keys, args)
  if redis.call('EXISTS', keys[1]) == 1 then return 'duplicate' end
  local prefix, tid, now, version = args[1], args[2], args[3], tonumber(args[5])
  local state = redis.call('HGET', keys[2], 'state')
  if not state then return redis.error_reply('NOTFOUND no such record') end
  local qkey = prefix .. 'quote:' .. tid
  local current = tonumber(redis.call('HGET', qkey, 'version') or 0)
  if current >= version then
    redis.call('SET', keys[1], '1', 'EX', tonumber(args[4]))
    return 'duplicate'
  end
  if current > 0 then
    redis.call('HSET', qkey, 'status', 'superseded')
    redis.call('RPUSH', prefix .. 'quotes:' .. tid, cjson.encode(redis.call('HGETALL', qkey)))
    redis.call('DEL', qkey)
  end
  redis.call('HSET', qkey, 'ticket', tid, 'version', version, 'status', 'pending', 'created_at', now, unpack(tail(args, 8)))
  redis.call('ZADD', prefix .. 'quotes:pending', args[6], tid)
  timeline_add(prefix, tid, now, 'quote.sent', state, 'billing', 'v' .. version)
  outbox_add(keys[3], tid .. '/quote_sent/' .. version, '103', tid, now, 'billing', args[7])
  redis.call('SET', keys[1], '1', 'EX', tonumber(args[4]))
  return 'applied'
end

--[[
invoice_issue: issue an invoice once per (ticket, kind), numbered FAC-<year>-NNNNNN in one continuous series per
year: the number is drawn in the same atomic call that writes the invoice, so there is no gap and no duplicate
(B2). An invoice is never changed afterwards except its payment status; corrections are credit notes.
KEYS: 1 key naming this invoice's purpose (invoice_for:<ticket>:<kind>), 2 the year's sequence, 3 ticket hash,
      4 outbox to notification, 5 dedup key of the input message ('' when issued by a command)
ARGV: 1 shard prefix, 2 ticket id, 3 now ms, 4 year, 5 due score (yyyymmdd), 6 customer id, 7 gross cents,
      8 notice body template marker, 9 dedup ttl s, 10.. invoice field/value pairs
Returns {invoice id, replayed}.
]]
local function invoice_issue(keys, args)
  local prev = redis.call('GET', keys[1])
  if prev then
    if keys[5] ~= '' then redis.call('SET', keys[5], '1', 'EX', tonumber(args[9])) end
    return {prev, 1}
  end
  local prefix, tid, now = args[1], args[2], args[3]
  local id = string.format('FAC-%s-%06d', args[4], redis.call('INCR', keys[2]))
  local ikey = prefix .. 'invoice:' .. id
  redis.call('HSET', ikey, 'id', id, 'ticket', tid, 'customer_id', args[6], 'issued_at', now, 'total_cents', args[7],
    'paid_cents', 0, 'credited_cents', 0, 'balance_cents', args[7], 'status', 'unpaid', unpack(tail(args, 10)))
  redis.call('ZADD', prefix .. 'invoices', now, id)
  redis.call('ZADD', prefix .. 'invoices:unpaid', args[5], id)
  redis.call('RPUSH', prefix .. 'customer:' .. args[6] .. ':invoices', id)
  redis.call('HSET', keys[3], 'invoice_id', id)
  local state = redis.call('HGET', keys[3], 'state') or ''
  timeline_add(prefix, tid, now, 'invoice.issued', state, 'billing', id)
  outbox_add(keys[4], tid .. '/invoice_issued/' .. id, '103', tid, now, 'billing', args[8])
  redis.call('SET', keys[1], id)
  if keys[5] ~= '' then redis.call('SET', keys[5], '1', 'EX', tonumber(args[9])) end
  return {id, 0}
end

-- Recomputes an invoice's balance and status after a payment or a credit note.
local function invoice_settle(prefix, ikey)
  local f = redis.call('HMGET', ikey, 'id', 'total_cents', 'paid_cents', 'credited_cents')
  local balance = tonumber(f[2]) - tonumber(f[3]) - tonumber(f[4])
  local status = balance <= 0 and (tonumber(f[4]) >= tonumber(f[2]) and 'credited' or 'paid')
    or (tonumber(f[3]) > 0 and 'partially_paid' or 'unpaid')
  redis.call('HSET', ikey, 'balance_cents', balance, 'status', status)
  if balance <= 0 then redis.call('ZREM', prefix .. 'invoices:unpaid', f[1]) end
  return balance, status
end

--[[
payment_record: a payment on an invoice; partial payments add up; an overpayment is refused.
KEYS: 1 request dedup key, 2 invoice hash
ARGV: 1 shard prefix, 2 now ms, 3 dedup ttl s, 4 amount cents, 5 method, 6 reference, 7 actor
Returns {balance, status, replayed} or "REFUSED <reason>" / "NOTFOUND".
]]
local function payment_record(keys, args)
  local prev = redis.call('GET', keys[1])
  if prev then
    local first = cjson.decode(prev)
    return {first.balance, first.status, 1}
  end
  local f = redis.call('HMGET', keys[2], 'id', 'balance_cents', 'ticket')
  if not f[1] then return redis.error_reply('NOTFOUND no such record') end
  local amount = tonumber(args[4])
  if amount > tonumber(f[2]) then
    return redis.error_reply('REFUSED ' .. amount .. ' cents is more than the balance of ' .. f[2] .. ' cents of ' .. f[1])
  end
  redis.call('HINCRBY', keys[2], 'paid_cents', amount)
  redis.call('RPUSH', keys[2] .. ':payments', cjson.encode({at = tonumber(args[2]), amount_cents = amount,
    method = args[5], ref = args[6], by = args[7]}))
  local balance, status = invoice_settle(args[1], keys[2])
  local state = redis.call('HGET', args[1] .. 'ticket:' .. f[3], 'state') or ''
  timeline_add(args[1], f[3], args[2], 'payment.recorded', state, args[7], f[1] .. ' ' .. amount)
  -- The first answer is kept whole: a retried request gets it back, not the balance of the moment.
  redis.call('SET', keys[1], cjson.encode({balance = balance, status = status}), 'EX', tonumber(args[3]))
  return {balance, status, 0}
end

--[[
credit_issue: a credit note (avoir) on an invoice, numbered AV-<year>-NNNNNN in its own continuous series.
KEYS: 1 request dedup key, 2 the year's credit-note sequence, 3 invoice hash
ARGV: 1 shard prefix, 2 now ms, 3 dedup ttl s, 4 year, 5 amount cents (0 = the whole uncredited rest), 6 reason,
      7 actor
Returns {credit note id, amount, replayed} or "REFUSED <reason>" / "NOTFOUND".
]]
local function credit_issue(keys, args)
  local prev = redis.call('GET', keys[1])
  if prev then return {prev, tonumber(redis.call('HGET', args[1] .. 'credit:' .. prev, 'amount_cents')), 1} end
  local f = redis.call('HMGET', keys[3], 'id', 'total_cents', 'credited_cents', 'ticket', 'customer_id')
  if not f[1] then return redis.error_reply('NOTFOUND no such record') end
  local room = tonumber(f[2]) - tonumber(f[3])
  local amount = tonumber(args[5])
  if amount == 0 then amount = room end
  if amount <= 0 or amount > room then
    return redis.error_reply('REFUSED ' .. f[1] .. ' can be credited at most ' .. room .. ' cents more')
  end
  local id = string.format('AV-%s-%06d', args[4], redis.call('INCR', keys[2]))
  redis.call('HSET', args[1] .. 'credit:' .. id, 'id', id, 'invoice', f[1], 'ticket', f[4], 'customer_id', f[5],
    'amount_cents', amount, 'reason', args[6], 'issued_at', args[2], 'issued_by', args[7])
  redis.call('ZADD', args[1] .. 'credits', args[2], id)
  redis.call('HINCRBY', keys[3], 'credited_cents', amount)
  redis.call('RPUSH', keys[3] .. ':credits', id)
  invoice_settle(args[1], keys[3])
  local state = redis.call('HGET', args[1] .. 'ticket:' .. f[4], 'state') or ''
  timeline_add(args[1], f[4], args[2], 'credit.issued', state, args[7], id .. ' ' .. amount)
  redis.call('SET', keys[1], id, 'EX', tonumber(args[3]))
  return {id, amount, 0}
end

--[[
claim_create: the warranty claim of a free repair, once per ticket, to the manufacturer.
KEYS: 1 key naming the claim's purpose (claim_for:<ticket>), 2 claim sequence, 3 dedup key of the input message
ARGV: 1 shard prefix, 2 now ms, 3 dedup ttl s, 4.. claim field/value pairs
Returns 'applied' (also when the claim already existed: the input is then a duplicate).
]]
local function claim_create(keys, args)
  local prev = redis.call('GET', keys[1])
  if not prev then
    prev = string.format('WC-%06d', redis.call('INCR', keys[2]))
    redis.call('HSET', args[1] .. 'claim:' .. prev, 'id', prev, 'status', 'submitted', 'created_at', args[2],
      unpack(tail(args, 4)))
    redis.call('ZADD', args[1] .. 'claims', args[2], prev)
    redis.call('SET', keys[1], prev)
  end
  redis.call('SET', keys[3], '1', 'EX', tonumber(args[3]))
  return 'applied'
end

--[[
claim_status: move a warranty claim on: submitted -> approved|rejected, approved -> paid.
KEYS: 1 claim hash
ARGV: 1 new status, 2 now ms, 3.. field/value pairs
Returns the new status or "REFUSED <reason>" / "NOTFOUND".
]]
local function claim_status(keys, args)
  local status = redis.call('HGET', keys[1], 'status')
  if not status then return redis.error_reply('NOTFOUND no such record') end
  local allowed = {submitted = {approved = true, rejected = true}, approved = {paid = true}}
  if status == args[1] then return status end
  if not (allowed[status] and allowed[status][args[1]]) then
    return redis.error_reply('REFUSED the claim is ' .. status .. ': it cannot become ' .. args[1])
  end
  redis.call('HSET', keys[1], 'status', args[1], args[1] .. '_at', args[2], unpack(tail(args, 3)))
  return args[1]
end

-- Applies one part's final state to an SMS; returns its status.
local function sms_part_receipt(prefix, nkey, now, id, state)
  if redis.call('HSETNX', nkey, 'receipt:' .. id, state) == 0 then return redis.call('HGET', nkey, 'status') end
  local f = redis.call('HMGET', nkey, 'status', 'sms_parts')
  if f[1] ~= 'sent' then return f[1] end
  if state ~= 'DELIVRD' then
    redis.call('HSET', nkey, 'status', 'failed', 'last_answer', 'delivery receipt ' .. state, 'updated_at', now)
    redis.call('ZADD', prefix .. 'sms:sending:failed', now, redis.call('HGET', nkey, 'id'))
    return 'failed'
  end
  if redis.call('HINCRBY', nkey, 'parts_delivered', 1) >= tonumber(f[2] or '1') then
    redis.call('HSET', nkey, 'status', 'delivered', 'delivered_at', now)
    return 'delivered'
  end
  return 'sent'
end

-- Claims left unconfirmed longer than stale ms (their sender died) go back to the queue, counted: the
-- message may have gone out already.
local function requeue_stale(prefix, queue, sending, now, stale)
  for _, nid in ipairs(redis.call('ZRANGEBYSCORE', sending, '-inf', now - stale)) do
    local nkey = prefix .. 'notif:' .. nid
    redis.call('ZREM', sending, nid)
    redis.call('HSET', nkey, 'status', 'queued')
    -- A claim its sender marked untried (see sms_claim) never left: it cannot go twice.
    if redis.call('HDEL', nkey, 'untried') == 0 then redis.call('HINCRBY', nkey, 'resent_after_crash', 1) end
    redis.call('ZADD', queue, now, nid)
  end
end

-- Moves one message from its queue to the sending index, the attempt counted; returns {id, flat hash}.
local function claim_one(prefix, queue, sending, nid, now)
  local nkey = prefix .. 'notif:' .. nid
  redis.call('ZREM', queue, nid)
  redis.call('ZADD', sending, now, nid)
  redis.call('HSET', nkey, 'status', 'sending', 'sending_at', now)
  redis.call('HINCRBY', nkey, 'attempts', 1)
  return {nid, redis.call('HGETALL', nkey)}
end

--[[
mail_claim: the e-mails due for sending, claimed (status sending, attempt counted) so that no other sender
takes them; first, sends left unconfirmed longer than the stale delay (the sender died between the SMTP
server's answer and mail_done) are queued again: the one window where an e-mail can go out twice.
KEYS: 1 mail queue (score = when due), 2 sending index (score = when claimed)
ARGV: 1 shard prefix, 2 now ms, 3 how many at most, 4 stale delay ms
Returns {{notification id, flat hash}...}.
]]
local function mail_claim(keys, args)
  local prefix, now = args[1], tonumber(args[2])
  requeue_stale(prefix, keys[1], keys[2], now, tonumber(args[4]))
  local out = {}
  for _, nid in ipairs(redis.call('ZRANGEBYSCORE', keys[1], '-inf', now, 'LIMIT', 0, tonumber(args[3]))) do
    out[#out + 1] = claim_one(prefix, keys[1], keys[2], nid, now)
  end
  return out
end

--[[
mail_done: the outcome of one send: sent, retry (temporary failure: queued again at a later time), failed,
or release (claimed but never tried: queued again at once, the attempt not counted).
KEYS: 1 notification hash, 2 mail queue, 3 sending index (failed ones go to <sending index>:failed)
ARGV: 1 notification id, 2 now ms, 3 outcome, 4 detail (server answer or reason), 5 when to retry (ms),
      6 '1' when the whole message went out and no final answer came (the server may have kept it: the retry
      may make a second copy, counted in resent_after_crash)
Returns the new status.
]]
local function mail_done(keys, args)
  if redis.call('HGET', keys[1], 'status') ~= 'sending' then return redis.call('HGET', keys[1], 'status') or '' end
  redis.call('ZREM', keys[3], args[1])
  if args[3] == 'release' then
    redis.call('HSET', keys[1], 'status', 'queued')
    redis.call('HINCRBY', keys[1], 'attempts', -1)
    redis.call('ZADD', keys[2], args[2], args[1])
    return 'queued'
  end
  local status = args[3] == 'sent' and 'sent' or args[3] == 'retry' and 'queued' or 'failed'
  redis.call('HSET', keys[1], 'status', status, 'last_answer', args[4], 'updated_at', args[2])
  if status == 'sent' then redis.call('HSET', keys[1], 'sent_at', args[2]) end
  if status == 'queued' then redis.call('ZADD', keys[2], args[5], args[1]) end
  if status == 'queued' and args[6] == '1' then redis.call('HINCRBY', keys[1], 'resent_after_crash', 1) end
  if status == 'failed' then redis.call('ZADD', keys[3] .. ':failed', args[2], args[1]) end
  return status
end

--[[
mail_retry: an operator sends a failed e-mail or SMS again.
KEYS: 1 notification hash
ARGV: 1 notification id, 2 now ms, 3 shard prefix
Returns the new status, or "REFUSED <reason>" / "NOTFOUND".
]]
local function mail_retry(keys, args)
  local f = redis.call('HMGET', keys[1], 'status', 'channel')
  if not f[1] then return redis.error_reply('NOTFOUND no such notification') end
  if f[1] ~= 'failed' then return redis.error_reply('REFUSED the notification is ' .. f[1] .. ', not failed') end
  local queue = f[2] == 'sms' and args[3] .. 'sms:queue' or args[3] .. 'mail:queue'
  local failed = f[2] == 'sms' and args[3] .. 'sms:sending:failed' or args[3] .. 'mail:sending:failed'
  redis.call('HSET', keys[1], 'status', 'queued', 'attempts', 0)
  redis.call('ZADD', queue, args[2], args[1])
  redis.call('ZREM', failed, args[1])
  return 'queued'
end

--[[
sms_claim: the SMS due for sending, claimed like e-mails (see mail_claim), one recipient at a time: a
recipient's messages go out in the order they were recorded, a later one waiting until the SMSC has
accepted (or finally refused) the one before, even across retries.
KEYS: 1 sms queue (score = when due), 2 sending index, 3 busy recipients (recipient -> notification id)
ARGV: 1 shard prefix, 2 now ms, 3 how many at most, 4 stale delay ms, 5 '1' in quiet hours (only urgent SMS go;
      the others become 'deferred' until the window opens), 6 turn ms: an SMS handed to a gateway (status sent)
      longer ago than this no longer holds its recipient's turn, its report overdue (0: no limit), 7 '1': mark
      the claims untried until sms_handover (a crash before it is no possible duplicate)
Returns {{notification id, flat hash}...}.
]]
local function sms_claim(keys, args)
  local prefix, now, want, turn_ms = args[1], tonumber(args[2]), tonumber(args[3]), tonumber(args[6] or '0')
  requeue_stale(prefix, keys[1], keys[2], now, tonumber(args[4]))
  local out = {}
  -- The whole recorded order is scanned so that a recipient's first message is found behind later ones.
  for _, nid in ipairs(redis.call('ZRANGEBYSCORE', keys[1], '-inf', '+inf', 'LIMIT', 0, 1000)) do
    if #out >= want then break end
    local nkey = prefix .. 'notif:' .. nid
    local f = redis.call('HMGET', nkey, 'recipient', 'at', 'due', 'urgent', 'status')
    local holder = redis.call('HGET', keys[3], f[1])
    if holder and holder ~= nid and turn_ms > 0 then
      local h = redis.call('HMGET', prefix .. 'notif:' .. holder, 'status', 'sent_at')
      if h[1] == 'sent' and tonumber(h[2] or '0') < now - turn_ms then holder = nil end
    end
    -- In quiet hours an urgent SMS passes a recipient's held turn unless that SMS is on its way right now.
    if args[5] == '1' and f[4] == '1' and holder and holder ~= nid and
        redis.call('HGET', prefix .. 'notif:' .. holder, 'status') ~= 'sending' then
      holder = nil
    end
    if args[5] == '1' and f[4] ~= '1' then
      if f[5] == 'queued' then redis.call('HSET', nkey, 'status', 'deferred') end
    elseif (not holder or holder == nid) and tonumber(f[3] or '0') <= now then
      redis.call('HSET', keys[3], f[1], nid)
      if args[7] == '1' then redis.call('HSET', nkey, 'untried', '1') end
      out[#out + 1] = claim_one(prefix, keys[1], keys[2], nid, now)
    end
  end
  return out
end

--[[
sms_done: the outcome of one SMS: sent (the SMSC accepted every part; its message ids are kept to match
delivery receipts, and a receipt that came first is applied now), accepted (an HTTP gateway took it: sent,
the recipient's turn held until the gateway reports on it, see sms_report), retry, failed, or release
(claimed but not submitted: queued again at once, the attempt not counted).
KEYS: 1 notification hash, 2 sms queue, 3 sending index, 4 busy recipients
ARGV: 1 notification id, 2 now ms, 3 outcome, 4 detail, 5 when to retry (ms), 6 shard prefix,
      7 receipt ttl s, then the message ids of the parts, each followed by its other spellings joined by ','
Returns the new status.
]]
local function sms_done(keys, args)
  local f = redis.call('HMGET', keys[1], 'status', 'recipient', 'resent_after_crash')
  local nid, now, prefix, ttl = args[1], args[2], args[6], tonumber(args[7])
  -- Accepted while Redis was away, the SMS may have been queued again as a stale claim: it is sent and must not
  -- go again (nor count as resent).
  if (f[1] == 'queued' or f[1] == 'deferred') and (args[3] == 'sent' or args[3] == 'accepted') then
    redis.call('ZREM', keys[2], nid)
    if tonumber(f[3] or '0') > 0 then redis.call('HINCRBY', keys[1], 'resent_after_crash', -1) end
    f[1] = 'sending'
  end
  if f[1] ~= 'sending' then return f[1] or '' end
  redis.call('ZREM', keys[3], nid)
  local status = (args[3] == 'sent' or args[3] == 'accepted') and 'sent'
    or (args[3] == 'retry' or args[3] == 'release') and 'queued' or 'failed'
  redis.call('HSET', keys[1], 'status', status, 'last_answer', args[4], 'updated_at', now)
  if args[3] == 'accepted' then
    redis.call('HSET', keys[1], 'sent_at', now)
    return status
  end
  if args[3] == 'release' then
    redis.call('HINCRBY', keys[1], 'attempts', -1)
    args[5] = now
  end
  if status == 'queued' then
    -- Keeps its place in the recorded order (and its recipient's turn); 'due' says when it may go again.
    redis.call('HSET', keys[1], 'due', args[5])
    redis.call('ZADD', keys[2], redis.call('HGET', keys[1], 'at'), nid)
    return status
  end
  if redis.call('HGET', keys[4], f[2]) == nid then redis.call('HDEL', keys[4], f[2]) end
  if status == 'failed' then
    redis.call('ZADD', keys[3] .. ':failed', now, nid)
    return status
  end
  local ids = {}
  for i = 8, #args do ids[#ids + 1] = args[i] end
  redis.call('HSET', keys[1], 'sent_at', now, 'message_ids', table.concat(ids, ';'))
  redis.call('HDEL', keys[1], 'parts_delivered')
  for _, spellings in ipairs(ids) do
    -- Only the id as the SMSC wrote it is kept: another spelling of it may be a later message's own id. A
    -- receipt in another base finds it through the receipt's own spellings (sms_receipt).
    redis.call('SET', prefix .. 'sms:msgid:' .. string.match(spellings, '^[^,]+'), nid, 'EX', ttl)
    for id in string.gmatch(spellings, '[^,]+') do
      local early = redis.call('GET', prefix .. 'sms:early:' .. id)
      if early then
        redis.call('DEL', prefix .. 'sms:early:' .. id)
        status = sms_part_receipt(prefix, keys[1], now, id, early)
      end
    end
  end
  return status
end

--[[
sms_receipt: a delivery receipt for one part. The SMS is delivered when every part is, failed when one
part finally fails. A receipt for an id not (yet) known is kept until its submit response is recorded:
SMSCs may send the receipt before the response. A receipt seen twice counts once.
KEYS: none
ARGV: 1 shard prefix, 2 now ms, 3 final state (DELIVRD, UNDELIV...), 4 receipt ttl s, then the spellings of the id
Returns the notification's status, or 'early'.
]]
local function sms_receipt(keys, args)
  local prefix, now, state = args[1], args[2], args[3]
  for i = 5, #args do
    local nid = redis.call('GET', prefix .. 'sms:msgid:' .. args[i])
    if nid then return sms_part_receipt(prefix, prefix .. 'notif:' .. nid, now, args[5], state) end
  end
  redis.call('SET', prefix .. 'sms:early:' .. args[5], state, 'EX', tonumber(args[4]))
  return 'early'
end

--[[
sms_handover: an SMS about to be handed to an HTTP gateway gets the token its delivery reports will carry, only
if it is still claimed (a report may already have settled it: it must not go again).
KEYS: 1 notification hash
ARGV: 1 token
Returns 'ok', or the status that forbids sending.
]]
local function sms_handover(keys, args)
  local status = redis.call('HGET', keys[1], 'status')
  if status ~= 'sending' then return status or 'gone' end
  redis.call('HSET', keys[1], 'dlr_token', args[1])
  redis.call('HDEL', keys[1], 'untried')
  return 'ok'
end

--[[
sms_report: a gateway's delivery report on one SMS (Kannel's dlr-url), authenticated by the token of the
attempt it reports on. Types: 1 delivered to the phone, 2 not delivered, 4 buffered by the SMSC, 8 accepted
by the SMSC, 16 refused by the SMSC. A report that comes before the gateway's HTTP answer was recorded, or
after a crash queued the SMS again, proves the hand-over: the SMS is sent (and does not go again). The
recipient's turn passes once the SMSC accepted, refused or delivered it. A repeated report changes nothing.
KEYS: 1 notification hash, 2 sms queue, 3 sending index, 4 busy recipients
ARGV: 1 notification id, 2 now ms, 3 token, 4 type, 5 the gateway's detail
Returns the new status, or an error NOTFOUND / REFUSED.
]]
local function sms_report(keys, args)
  local f = redis.call('HMGET', keys[1], 'status', 'recipient', 'dlr_token', 'channel', 'resent_after_crash')
  if not f[1] or f[4] ~= 'sms' then return redis.error_reply('NOTFOUND no such SMS') end
  if f[3] ~= args[3] then return redis.error_reply('REFUSED the report does not match the SMS (token)') end
  local nid, now, kind, status = args[1], args[2], tonumber(args[4]), f[1]
  redis.call('HSETNX', keys[1], 'report:' .. kind, now)
  if status == 'delivered' or status == 'failed' then return status end
  if status ~= 'sent' then
    if status ~= 'sending' and tonumber(f[5] or '0') > 0 then
      redis.call('HINCRBY', keys[1], 'resent_after_crash', -1)
    end
    redis.call('ZREM', keys[2], nid)
    redis.call('ZREM', keys[3], nid)
    redis.call('HSET', keys[1], 'status', 'sent', 'sent_at', now, 'last_answer', 'reported by the gateway')
    status = 'sent'
  end
  redis.call('HSET', keys[1], 'updated_at', now)
  if kind == 1 then
    status = 'delivered'
    redis.call('HSET', keys[1], 'status', status, 'delivered_at', now)
  elseif kind == 2 or kind == 16 then
    status = 'failed'
    redis.call('HSET', keys[1], 'status', status, 'last_answer',
      (kind == 2 and 'not delivered: ' or 'refused by the SMSC: ') .. args[5])
    redis.call('ZADD', keys[3] .. ':failed', now, nid)
  elseif kind ~= 8 then
    return status
  end
  if redis.call('HGET', keys[4], f[2]) == nid then redis.call('HDEL', keys[4], f[2]) end
  return status
end

--[[
sms_stop: a customer answered STOP by SMS: every customer at that number leaves marketing messages (service
messages about their own tickets still go: they are not marketing).
ARGV: 1 shard prefix, 2 now ms, 3 the number in international form (+ and digits)
Returns how many customers it concerned.
]]
local function sms_stop(keys, args)
  local ids = redis.call('SMEMBERS', args[1] .. 'customers:phone:' .. args[3])
  for _, id in ipairs(ids) do
    redis.call('HSET', args[1] .. 'customer:' .. id, 'consent_marketing', '0', 'marketing_stop_at', args[2],
      'updated_at', args[2])
  end
  return #ids
end

-- Archiving (services/intake/archiving.c): a closed ticket's whole record leaves Redis for a compressed file
-- of its month of closure. The record is read twice, by archive_collect (to write the file) and by
-- archive_remove (to delete): both take the same canonical form (hashes as field-sorted pairs, lists in order)
-- and its SHA-1, so the removal deletes exactly what was written, or nothing if the ticket changed meanwhile.

-- A flat HGETALL reply as pairs sorted by field name (a hash's own order may change without its content).
local function sorted_pairs(flat)
  local names, values = {}, {}
  for i = 1, #flat, 2 do
    names[#names + 1] = flat[i]
    values[flat[i]] = flat[i + 1]
  end
  table.sort(names)
  local out = {}
  for _, k in ipairs(names) do
    out[#out + 1] = k
    out[#out + 1] = values[k]
  end
  return out
end

local function flat_get(flat, name)
  for i = 1, #flat, 2 do
    if flat[i] == name then return flat[i + 1] end
  end
  return nil
end

-- Notifications a sender may still hold or send: their ticket stays until they are settled.
local ARCHIVE_IN_FLIGHT = {queued = true, deferred = true, sending = true}

-- The digest (hex) and the ticket's last change (ms) a packed value's header holds (common/pack.h), or nil.
local function pack_header(value)
  if not value or #value < 38 or string.sub(value, 1, 4) ~= 'SVPK' then return nil end
  local digest = (string.gsub(string.sub(value, 7, 26), '.', function(c) return string.format('%02x', string.byte(c)) end))
  local last = 0
  for i = 31, 38 do last = last * 256 + string.byte(value, i) end
  return digest, last
end

--[[
Whether a closed ticket has settled, for archiving and packing: closed or cancelled, not changed after cutoff (its
last change: the latest of updated_at, state_since, its last timeline entry and, when packed, the last change its
packed value recorded), no complaint open, no notification a sender may still hold, no invoice unpaid, no parts
reserved or awaited. Returns {last, closed, complaints = {{id, flat}...}, notifications = {{id, flat}...} (in the
order of notifs:<T>), invoices = {{kind, id}...}}, or nil and why not.
]]
local function ticket_settled(prefix, tid, ticket, cutoff)
  local tkey = prefix .. 'ticket:' .. tid
  local state = flat_get(ticket, 'state') or ''
  if state ~= 'closed' and state ~= 'cancelled' then return nil, 'not closed (' .. state .. ')' end
  local closed = tonumber(flat_get(ticket, 'state_since') or '0') or 0
  local last = math.max(closed, tonumber(flat_get(ticket, 'updated_at') or '0') or 0)
  local tail_entry = redis.call('LRANGE', prefix .. 'timeline:' .. tid, -1, -1)
  if #tail_entry > 0 then
    local ok, e = pcall(cjson.decode, tail_entry[1])
    if ok and type(e) == 'table' and tonumber(e.at) and tonumber(e.at) > last then last = tonumber(e.at) end
  end
  local _, packed_last = pack_header(redis.call('GET', prefix .. 'packed:' .. tid))
  if packed_last and packed_last > last then last = packed_last end
  if last > cutoff then return nil, 'changed after the cutoff' end
  local complaints = {}
  for _, cid in ipairs(redis.call('LRANGE', tkey .. ':complaints', 0, -1)) do
    local c = redis.call('HGETALL', prefix .. 'complaint:' .. cid)
    if flat_get(c, 'status') ~= 'resolved' then return nil, 'complaint ' .. cid .. ' is open' end
    complaints[#complaints + 1] = {cid, c}
  end
  local notifications = {}
  for _, nid in ipairs(redis.call('LRANGE', prefix .. 'notifs:' .. tid, 0, -1)) do
    local n = redis.call('HGETALL', prefix .. 'notif:' .. nid)
    local status = flat_get(n, 'status') or ''
    if ARCHIVE_IN_FLIGHT[status] then return nil, 'notification ' .. nid .. ' is ' .. status end
    notifications[#notifications + 1] = {nid, n}
  end
  local invoices = {}
  for _, kind in ipairs({'repair', 'diagnostic'}) do
    local inv = redis.call('GET', prefix .. 'invoice_for:' .. tid .. ':' .. kind)
    if inv then
      if redis.call('ZSCORE', prefix .. 'invoices:unpaid', inv) then return nil, 'invoice ' .. inv .. ' is unpaid' end
      invoices[#invoices + 1] = {kind, inv}
    end
  end
  if redis.call('EXISTS', prefix .. 'parts_need:' .. tid, prefix .. 'parts_held:' .. tid) > 0 then
    return nil, 'parts are still reserved or awaited'
  end
  return {last = last, closed = closed, complaints = complaints, notifications = notifications, invoices = invoices}
end

--[[
What archiving and packing both take of a settled closed ticket (see ticket_settled): {ticket, timeline,
prediagnosis, coverage, verdict, verdicts, quote, quotes}, each hash passed through shape. Returns those parts and
what ticket_settled found, or nil and why not ('absent' when there is no ticket, 'packed' when it is packed already,
or ticket_settled's reason).
]]
local function settled_record(prefix, tid, cutoff, shape)
  local ticket = redis.call('HGETALL', prefix .. 'ticket:' .. tid)
  if #ticket == 0 then return nil, 'absent' end
  local settled, why = ticket_settled(prefix, tid, ticket, cutoff)
  if not settled then return nil, why end
  if redis.call('EXISTS', prefix .. 'packed:' .. tid) == 1 then return nil, 'packed' end
  local function hash(name) return shape(redis.call('HGETALL', prefix .. name .. ':' .. tid)) end
  local function list(name) return redis.call('LRANGE', prefix .. name .. ':' .. tid, 0, -1) end
  return {shape(ticket), list('timeline'), hash('prediag'), hash('coverage'), hash('verdict'), list('verdicts'),
    hash('quote'), list('quotes')}, settled
end

--[[
Reads what archiving takes of a closed ticket, in canonical form: {ticket, timeline, prediagnosis, coverage,
verdict, verdicts, quote, quotes, {{notification id, pairs}...}, {{complaint id, pairs}...},
{{invoice kind, invoice id}...}, claim id}. Returns the parts, the time of the ticket's last change and the time it
was closed, or nil and why it stays in Redis (see ticket_settled; 'absent' when there is no ticket, 'packed' for a
settled packed ticket: the caller unpacks it first, then its record reads as any other).
]]
local function archive_read(prefix, tid, cutoff)
  local parts, settled = settled_record(prefix, tid, cutoff, sorted_pairs)
  if not parts then return nil, settled end
  local notifications, complaints = {}, {}
  for _, n in ipairs(settled.notifications) do notifications[#notifications + 1] = {n[1], sorted_pairs(n[2])} end
  for _, c in ipairs(settled.complaints) do complaints[#complaints + 1] = {c[1], sorted_pairs(c[2])} end
  parts[9], parts[10], parts[11] = notifications, complaints, settled.invoices
  parts[12] = redis.call('GET', prefix .. 'claim_for:' .. tid) or ''
  return parts, settled.last, settled.closed
end

-- The timer marks of a ticket (ticket_mark keeps them forever). Once it is closed their effects are in its
-- timeline and no timer looks at them again: archiving and packing delete them.
local function ticket_done_marks(prefix, tid, ticket, reminders, quote_version)
  local marks = {}
  for _, m in ipairs({'unclaimed', 'deadline.warning', 'deadline.breached'}) do
    marks[#marks + 1] = prefix .. 'done:' .. tid .. ':' .. m
  end
  local n = math.max(tonumber(reminders) or 0, tonumber(flat_get(ticket, 'pickup_reminder_level') or '0') or 0)
  for i = 1, n do marks[#marks + 1] = prefix .. 'done:' .. tid .. ':pickup_reminder:' .. i end
  for v = 1, tonumber(quote_version or '0') or 0 do
    marks[#marks + 1] = prefix .. 'done:' .. tid .. ':quote_expired:' .. v
    marks[#marks + 1] = prefix .. 'done:' .. tid .. ':quote_reminder:' .. v
  end
  return marks
end

--[[
archive_collect (read-only): a closed ticket's record for its archive file, if it may leave Redis.
KEYS: 1 ticket hash
ARGV: 1 shard prefix, 2 ticket id, 3 cutoff ms (its last change must not be later)
Returns nil if there is no such ticket, {'skip', why} if it stays, else {'ok', digest (SHA-1 of the record),
closed at ms, last change ms, record (JSON array, see archive_read)}.
]]
local function archive_collect(keys, args)
  local parts, last, closed = archive_read(args[1], args[2], tonumber(args[3]))
  if not parts then
    if last == 'absent' then return nil end
    return {'skip', last}
  end
  local doc = cjson.encode(parts)
  return {'ok', redis.sha1hex(doc), tostring(closed), tostring(last), doc}
end

--[[
archive_remove: removes an archived ticket from Redis and from every index, once its record is in its file
(committed: written and fsynced). The record is read again: it must still be the one written (same digest), else
nothing changes. Invoices and claims stay (legal records), with their link to the ticket (invoice_for, claim_for);
the product keeps the facts its later guarantees need (product:<SN>:past); archived records the ticket's month
and digest, for `ticket show` and `archive search`.
KEYS: 1 ticket hash, 2 archived (hash: ticket id -> "<month>:<digest>")
ARGV: 1 shard prefix, 2 ticket id, 3 cutoff ms, 4 digest written, 5 month of the file, 6 pickup reminders configured
Returns {'removed', keys deleted}, {'already', "<month>:<digest>"} (removed before: a retry), {'changed', ''} (the
ticket changed since it was written), {'skip', why} (no longer archivable), or an error NOTFOUND.
]]
local function archive_remove(keys, args)
  local prefix, tid = args[1], args[2]
  if redis.call('EXISTS', keys[1]) == 0 then
    local was = redis.call('HGET', keys[2], tid)
    if was then return {'already', was} end
    return redis.error_reply('NOTFOUND no ticket ' .. tid)
  end
  local parts, why = archive_read(prefix, tid, tonumber(args[3]))
  if not parts then return {'skip', why} end
  if redis.sha1hex(cjson.encode(parts)) ~= args[4] then return {'changed', ''} end
  local ticket = parts[1]
  local state, customer, serial = flat_get(ticket, 'state'), flat_get(ticket, 'customer_id') or '',
    flat_get(ticket, 'serial') or ''
  local doomed = ticket_done_marks(prefix, tid, ticket, args[6], flat_get(parts[7], 'version'))
  for _, k in ipairs({keys[1], keys[1] .. ':complaints', prefix .. 'timeline:' .. tid, prefix .. 'prediag:' .. tid,
      prefix .. 'coverage:' .. tid, prefix .. 'verdict:' .. tid, prefix .. 'verdicts:' .. tid,
      prefix .. 'quote:' .. tid, prefix .. 'quotes:' .. tid, prefix .. 'notifs:' .. tid}) do
    doomed[#doomed + 1] = k
  end
  for _, n in ipairs(parts[9]) do
    local nid, pairs_ = n[1], n[2]
    doomed[#doomed + 1] = prefix .. 'notif:' .. nid
    redis.call('ZREM', prefix .. 'notifs:all', nid)
    for _, q in ipairs({'mail:queue', 'mail:sending', 'mail:sending:failed', 'sms:queue', 'sms:sending',
        'sms:sending:failed'}) do
      redis.call('ZREM', prefix .. q, nid)
    end
    local recipient = flat_get(pairs_, 'recipient') or ''
    if redis.call('HGET', prefix .. 'sms:busy', recipient) == nid then
      redis.call('HDEL', prefix .. 'sms:busy', recipient)
    end
  end
  for _, c in ipairs(parts[10]) do
    doomed[#doomed + 1] = prefix .. 'complaint:' .. c[1]
    doomed[#doomed + 1] = prefix .. 'done:' .. c[1] .. ':escalated'
    doomed[#doomed + 1] = prefix .. 'done:' .. c[1] .. ':mediator'
    redis.call('ZREM', prefix .. 'complaints:open', c[1])
  end
  for _, index in ipairs({'tickets', 'state:' .. state, 'customer:' .. customer .. ':tickets',
      'product:' .. serial .. ':tickets', 'maintenance:visits', 'unclaimed', 'legal_repairs', 'quotes:pending'}) do
    redis.call('ZREM', prefix .. index, tid)
  end
  if redis.call('GET', prefix .. 'product:' .. serial .. ':open_repair') == tid then
    doomed[#doomed + 1] = prefix .. 'product:' .. serial .. ':open_repair'
  end
  local deleted = redis.call('DEL', unpack(doomed))
  redis.call('HSET', prefix .. 'product:' .. serial .. ':past', tid, cjson.encode({
    basis = flat_get(parts[4], 'basis') or '', outcome = flat_get(ticket, 'outcome') or '',
    immobilisation_days = flat_get(ticket, 'immobilisation_days') or '0'}))
  redis.call('HSET', keys[2], tid, args[5] .. ':' .. args[4])
  return {'removed', deleted}
end

-- Packing (services/intake/packing.c, value format common/pack.h): a settled closed ticket's bulky records become
-- one compressed value, packed:<T>, written by the caller. Lua cannot inflate it: pack_collect reads the records
-- and their SHA-1 (the digest); ticket_pack replaces them by the value only if they still have that digest
-- (compare-and-set); ticket_unpack puts them back, given the payload the caller inflated, only if it is the one
-- the value in Redis holds. What may still happen to a packed ticket goes to fresh keys read over the packed
-- records (a timeline entry to a new timeline:<T>, a message to notifs:<T>, a field to the ticket hash), as
-- ticket_view's callers and ticket_unpack merge them.

-- The ticket fields kept in its hash once packed: what Functions and services read of a closed ticket (lists
-- and summaries, lifecycle refusals, notification contacts, coverage_facts, archiving's last change).
local PACK_KEEP = {id = true, state = true, kind = true, channel = true, customer_id = true, serial = true,
  model = true, centre = true, outcome = true, created_at = true, updated_at = true, state_since = true,
  requested_on = true, sla_due_on = true, unclaimed = true, immobilisation_days = true, invoice_id = true,
  lang = true}

-- Notification statuses nothing changes any more (an SMS sent may still get its receipt, see pack_settled).
local PACK_FINAL = {sent = true, delivered = true, recorded = true, erased = true}

-- Whether a notification's hash can be packed: final, and for an SMS sent, no delivery report can still be matched
-- to it (receipt_ms after it was sent: the life of sms:msgid:<id>). Failed ones and calls to make stay in
-- notifs:<T>, where `notification list` and `notification retry` find them.
local function pack_settled(n, now, receipt_ms)
  local status = flat_get(n, 'status') or ''
  if not PACK_FINAL[status] then return false end
  if status == 'sent' and flat_get(n, 'channel') == 'sms' then
    return (tonumber(flat_get(n, 'sent_at') or '0') or 0) <= now - receipt_ms
  end
  return true
end

--[[
Reads what packing takes of a settled closed ticket (see ticket_settled): {ticket, timeline, prediagnosis, coverage,
verdict, verdicts, quote, quotes, {notification id...} (all of notifs:<T>, in order), {{notification id, pairs}...}
(those pack_settled)}, hashes as flat lists in their own order (views show fields in that order). Returns the parts
and the ticket's last change, or nil and why not ('absent', 'packed' when it is packed already).
]]
local function pack_read(prefix, tid, cutoff, now, receipt_ms)
  local parts, settled = settled_record(prefix, tid, cutoff, function(flat) return flat end)
  if not parts then return nil, settled end
  local order, packed = {}, {}
  for _, n in ipairs(settled.notifications) do
    order[#order + 1] = n[1]
    if pack_settled(n[2], now, receipt_ms) then packed[#packed + 1] = n end
  end
  parts[9], parts[10] = order, packed
  return parts, settled.last
end

-- Whether a packed ticket has records written since it was packed that packing would take: a timeline entry, or a
-- message that became pack_settled. It is then unpacked and packed again.
local function pack_stale(prefix, tid, now, receipt_ms)
  if redis.call('EXISTS', prefix .. 'timeline:' .. tid) == 1 then return true end
  for _, nid in ipairs(redis.call('LRANGE', prefix .. 'notifs:' .. tid, 0, -1)) do
    if pack_settled(redis.call('HGETALL', prefix .. 'notif:' .. nid), now, receipt_ms) then return true end
  end
  return false
end

--[[
pack_collect (read-only): a settled closed ticket's records for its packed value.
KEYS: 1 ticket hash
ARGV: 1 shard prefix, 2 ticket id, 3 cutoff ms (its last change must not be later), 4 now ms, 5 receipt window ms
Returns nil if there is no such ticket, {'skip', why} if it stays as it is, {'repack', ''} for a packed ticket
written to since (unpack it, then collect again), else {'ok', digest (SHA-1 of the payload), last change ms,
payload (JSON array, see pack_read)}.
]]
local function pack_collect(keys, args)
  local prefix, tid, now, receipt_ms = args[1], args[2], tonumber(args[4]), tonumber(args[5])
  local parts, last = pack_read(prefix, tid, tonumber(args[3]), now, receipt_ms)
  if parts then
    local doc = cjson.encode(parts)
    return {'ok', redis.sha1hex(doc), tostring(last), doc}
  end
  if last == 'absent' then return nil end
  if last == 'packed' and pack_stale(prefix, tid, now, receipt_ms) then return {'repack', ''} end
  return {'skip', last}
end

--[[
ticket_pack: replaces a settled closed ticket's records by its packed value, if they are still those read (same
digest). Deleted: timeline, prediag, verdict, verdicts, quote, quotes, the packed notifications' hashes (and their
entries in notifs:all and sms:busy), the ticket's timer marks (done:); kept: notifs:<T> with the messages not
packed, coverage:<T> with its basis alone (coverage_facts reads it for the product's later tickets), the ticket hash
with the PACK_KEEP fields.
KEYS: 1 ticket hash, 2 packed:<T>
ARGV: 1 shard prefix, 2 ticket id, 3 cutoff ms, 4 now ms, 5 receipt window ms, 6 digest read, 7 the packed value
      (its header holds the same digest), 8 pickup reminders configured
Returns {'packed', notifications packed}, {'changed', ''} (written to since it was read), {'skip', why} (no longer
packable, or packed already), or an error NOTFOUND / REFUSED.
]]
local function ticket_pack(keys, args)
  local prefix, tid = args[1], args[2]
  local parts, why = pack_read(prefix, tid, tonumber(args[3]), tonumber(args[4]), tonumber(args[5]))
  if not parts then
    if why == 'absent' then return redis.error_reply('NOTFOUND no ticket ' .. tid) end
    return {'skip', why}
  end
  if redis.sha1hex(cjson.encode(parts)) ~= args[6] then return {'changed', ''} end
  if pack_header(args[7]) ~= args[6] then
    return redis.error_reply('REFUSED the packed value does not hold the records read (digest)')
  end
  local ticket = parts[1]
  local doomed = ticket_done_marks(prefix, tid, ticket, args[8], flat_get(parts[7], 'version'))
  for _, name in ipairs({'timeline:', 'prediag:', 'coverage:', 'verdict:', 'verdicts:', 'quote:', 'quotes:',
      'notifs:'}) do
    doomed[#doomed + 1] = prefix .. name .. tid
  end
  local gone = {}
  for _, n in ipairs(parts[10]) do
    local nid = n[1]
    gone[nid] = true
    doomed[#doomed + 1] = prefix .. 'notif:' .. nid
    redis.call('ZREM', prefix .. 'notifs:all', nid)
    local recipient = flat_get(n[2], 'recipient') or ''
    if redis.call('HGET', prefix .. 'sms:busy', recipient) == nid then redis.call('HDEL', prefix .. 'sms:busy', recipient) end
  end
  redis.call('DEL', unpack(doomed))
  local live = {}
  for _, nid in ipairs(parts[9]) do
    if not gone[nid] then live[#live + 1] = nid end
  end
  if #live > 0 then redis.call('RPUSH', prefix .. 'notifs:' .. tid, unpack(live)) end
  local drop = {}
  for i = 1, #ticket, 2 do
    if not PACK_KEEP[ticket[i]] then drop[#drop + 1] = ticket[i] end
  end
  if #drop > 0 then redis.call('HDEL', keys[1], unpack(drop)) end
  -- The basis coverage_facts reads for the product's later tickets, in the ticket hash rather than a key of its own
  -- (120 bytes more per ticket for two years).
  local basis = flat_get(parts[4], 'basis')
  if basis then redis.call('HSET', keys[1], 'coverage_basis', basis) end
  redis.call('SET', keys[2], args[7])
  return {'packed', #parts[10]}
end

-- Calls command on key with items (RPUSH values, HSET pairs) a thousand at a time: Lua's unpack is bounded.
local function push_all(command, key, items)
  for i = 1, #items, 1000 do redis.call(command, key, unpack(items, i, math.min(i + 999, #items))) end
end

-- A packed hash back in Redis, the live fields (written since it was packed) over it, in the order pack_merge_pairs
-- of common/pack.c gives.
local function hash_unpack(key, packed)
  if #packed == 0 then return end
  local live = redis.call('HGETALL', key)
  local merged, known = {}, {}
  for i = 1, #packed, 2 do
    known[packed[i]] = true
    merged[#merged + 1] = packed[i]
    merged[#merged + 1] = flat_get(live, packed[i]) or packed[i + 1]
  end
  for i = 1, #live, 2 do
    if not known[live[i]] then
      merged[#merged + 1] = live[i]
      merged[#merged + 1] = live[i + 1]
    end
  end
  redis.call('DEL', key)
  push_all('HSET', key, merged)
end

-- A packed list back in Redis, the live entries (appended since it was packed) after it.
local function list_unpack(key, packed)
  if #packed == 0 then return end
  local live = redis.call('LRANGE', key, 0, -1)
  redis.call('DEL', key)
  push_all('RPUSH', key, packed)
  if #live > 0 then push_all('RPUSH', key, live) end
end

--[[
ticket_unpack: puts a packed ticket's records back in their keys, with what was written since over them (the ticket
hash's fields, the timeline's new entries after the packed ones, the messages recorded since after the packed
order), and deletes the packed value: before a write Lua cannot apply to it (customer_erase), before archiving,
before packing it again. Only if payload is the one the value holds (its digest), so a value replaced meanwhile is
never unpacked from an old copy.
KEYS: 1 ticket hash, 2 packed:<T>
ARGV: 1 shard prefix, 2 ticket id, 3 the payload (the value inflated by the caller)
Returns {'unpacked', notifications restored}, {'not_packed', ''}, {'changed', ''} (the value is not the one read),
or an error REFUSED.
]]
local function ticket_unpack(keys, args)
  local prefix, tid, doc = args[1], args[2], args[3]
  local value = redis.call('GET', keys[2])
  if not value then return {'not_packed', ''} end
  if pack_header(value) ~= redis.sha1hex(doc) then return {'changed', ''} end
  local ok, parts = pcall(cjson.decode, doc)
  if not ok or type(parts) ~= 'table' or #parts ~= 10 then
    return redis.error_reply('REFUSED the payload of packed:' .. tid .. ' is not a packed ticket')
  end
  hash_unpack(keys[1], parts[1])
  redis.call('HDEL', keys[1], 'coverage_basis')
  list_unpack(prefix .. 'timeline:' .. tid, parts[2])
  hash_unpack(prefix .. 'prediag:' .. tid, parts[3])
  hash_unpack(prefix .. 'coverage:' .. tid, parts[4])
  hash_unpack(prefix .. 'verdict:' .. tid, parts[5])
  list_unpack(prefix .. 'verdicts:' .. tid, parts[6])
  hash_unpack(prefix .. 'quote:' .. tid, parts[7])
  list_unpack(prefix .. 'quotes:' .. tid, parts[8])
  for _, n in ipairs(parts[10]) do
    hash_unpack(prefix .. 'notif:' .. n[1], n[2])
    redis.call('ZADD', prefix .. 'notifs:all', tonumber(flat_get(n[2], 'at') or '0') or 0, n[1])
  end
  local order, listed = {}, {}
  for _, nid in ipairs(parts[9]) do
    order[#order + 1] = nid
    listed[nid] = true
  end
  for _, nid in ipairs(redis.call('LRANGE', prefix .. 'notifs:' .. tid, 0, -1)) do
    if not listed[nid] then order[#order + 1] = nid end
  end
  if #order > 0 then
    redis.call('DEL', prefix .. 'notifs:' .. tid)
    push_all('RPUSH', prefix .. 'notifs:' .. tid, order)
  end
  redis.call('DEL', keys[2])
  return {'unpacked', #parts[10]}
end

--[[
check_tickets (read-only): `savctl check` on a page of the tickets index: each ticket's hash, timeline, state
index, customer and product (and their indexes of it), and every notification its list names; a ticket also
recorded as archived is a removal half done.
KEYS: 1 the tickets index
ARGV: 1 shard prefix, 2.. ticket ids
Returns {{ticket id, state ('' if the hash is missing), notifications listed, {problem...}, packed value or false}...}:
a packed ticket may have no timeline key (its timeline is in the value, which the caller inflates and checks).
]]
local function check_tickets(keys, args)
  local prefix, out = args[1], {}
  for i = 2, #args do
    local tid, problems = args[i], {}
    local tkey = prefix .. 'ticket:' .. tid
    local t = redis.call('HMGET', tkey, 'state', 'customer_id', 'serial')
    local nids, packed = {}, redis.call('GET', prefix .. 'packed:' .. tid)
    if not t[1] then
      problems[#problems + 1] = 'ticket:' .. tid .. ' is missing (listed in tickets)'
    else
      if not packed and redis.call('EXISTS', prefix .. 'timeline:' .. tid) == 0 then
        problems[#problems + 1] = 'timeline:' .. tid .. ' is missing'
      end
      if not redis.call('ZSCORE', prefix .. 'state:' .. t[1], tid) then
        problems[#problems + 1] = tid .. ' is ' .. t[1] .. ' but not in state:' .. t[1]
      end
      local c, sn = t[2] or '', t[3] or ''
      if redis.call('EXISTS', prefix .. 'customer:' .. c) == 0 then
        problems[#problems + 1] = 'customer:' .. c .. ' of ' .. tid .. ' is missing'
      elseif not redis.call('ZSCORE', prefix .. 'customer:' .. c .. ':tickets', tid) then
        problems[#problems + 1] = tid .. ' is not in customer:' .. c .. ':tickets'
      end
      if redis.call('EXISTS', prefix .. 'product:' .. sn) == 0 then
        problems[#problems + 1] = 'product:' .. sn .. ' of ' .. tid .. ' is missing'
      elseif not redis.call('ZSCORE', prefix .. 'product:' .. sn .. ':tickets', tid) then
        problems[#problems + 1] = tid .. ' is not in product:' .. sn .. ':tickets'
      end
      nids = redis.call('LRANGE', prefix .. 'notifs:' .. tid, 0, -1)
      for _, nid in ipairs(nids) do
        if redis.call('EXISTS', prefix .. 'notif:' .. nid) == 0 then
          problems[#problems + 1] = 'notif:' .. nid .. ' (listed in notifs:' .. tid .. ') is missing'
        end
      end
      if redis.call('HGET', prefix .. 'archived', tid) then
        problems[#problems + 1] = tid .. ' is in Redis and also recorded as archived'
      end
    end
    out[#out + 1] = {tid, t[1] or '', #nids, problems, packed}
  end
  return out
end

--[[
check_index (read-only): `savctl check` on a page of members of an index: in state:<s>, each must be a ticket
in state s and in the tickets index; in archived, none may still have its ticket hash.
KEYS: 1 the index
ARGV: 1 shard prefix, 2 the state (or '' for the archived hash), 3.. members
Returns {problem...}.
]]
local function check_index(keys, args)
  local prefix, state, out = args[1], args[2], {}
  for i = 3, #args do
    local tid = args[i]
    local actual = redis.call('HGET', prefix .. 'ticket:' .. tid, 'state')
    if state == '' then
      if actual then out[#out + 1] = tid .. ' is recorded as archived but ticket:' .. tid .. ' is still there' end
    elseif not actual then
      out[#out + 1] = tid .. ' is in state:' .. state .. ' but ticket:' .. tid .. ' is missing'
    else
      if actual ~= state then out[#out + 1] = tid .. ' is in state:' .. state .. ' but its state is ' .. actual end
      if not redis.call('ZSCORE', prefix .. 'tickets', tid) then
        out[#out + 1] = tid .. ' is in state:' .. state .. ' but not in tickets'
      end
    end
  end
  return out
end

--[[
check_invoices (read-only): `savctl check` on a range of one year's invoice numbers: each FAC-<year>-<n> exists,
is in the invoices index, and its ticket is in Redis or archived.
KEYS: 1 the invoices index
ARGV: 1 shard prefix, 2 year, 3 first number, 4 last number
Returns {problem...}.
]]
local function check_invoices(keys, args)
  local prefix, out = args[1], {}
  for n = tonumber(args[3]), tonumber(args[4]) do
    local id = string.format('FAC-%s-%06d', args[2], n)
    local tid = redis.call('HGET', prefix .. 'invoice:' .. id, 'ticket')
    if not tid then
      out[#out + 1] = 'invoice:' .. id .. ' is missing (seq:invoice:' .. args[2] .. ' counts it)'
    else
      if not redis.call('ZSCORE', keys[1], id) then out[#out + 1] = id .. ' is not in the invoices index' end
      if redis.call('EXISTS', prefix .. 'ticket:' .. tid) == 0 and
          not redis.call('HGET', prefix .. 'archived', tid) then
        out[#out + 1] = id .. ': its ticket ' .. tid .. ' is neither in Redis nor archived'
      end
    end
  end
  return out
end

local function version() return LIB_VERSION end

redis.register_function('ticket_open', ticket_open)
redis.register_function('event_apply', event_apply)
redis.register_function('notification_record', notification_record)
redis.register_function{function_name = 'ticket_view', callback = ticket_view, flags = {'no-writes'}}
redis.register_function{function_name = 'ticket_contact', callback = ticket_contact, flags = {'no-writes'}}
redis.register_function('outbox_ack', outbox_ack)
redis.register_function('catalog_store', catalog_store)
redis.register_function('record_create', record_create)
redis.register_function('record_update', record_update)
redis.register_function('product_add', product_add)
redis.register_function('product_transfer', product_transfer)
redis.register_function('ticket_step', ticket_step)
redis.register_function('complaint_open', complaint_open)
redis.register_function('complaint_resolve', complaint_resolve)
redis.register_function('maintenance_advance', maintenance_advance)
redis.register_function('verdict_record', verdict_record)
redis.register_function('quote_create', quote_create)
redis.register_function('invoice_issue', invoice_issue)
redis.register_function('payment_record', payment_record)
redis.register_function('credit_issue', credit_issue)
redis.register_function('claim_create', claim_create)
redis.register_function('claim_status', claim_status)
redis.register_function('mail_claim', mail_claim)
redis.register_function('mail_done', mail_done)
redis.register_function('mail_retry', mail_retry)
redis.register_function('sms_claim', sms_claim)
redis.register_function('sms_done', sms_done)
redis.register_function('sms_receipt', sms_receipt)
redis.register_function('sms_stop', sms_stop)
redis.register_function('sms_handover', sms_handover)
redis.register_function('sms_report', sms_report)
redis.register_function('customer_erase', customer_erase)
redis.register_function('parts_move', parts_move)
redis.register_function{function_name = 'parts_stock', callback = parts_stock, flags = {'no-writes'}}
redis.register_function{function_name = 'customer_view', callback = customer_view, flags = {'no-writes'}}
redis.register_function{function_name = 'product_view', callback = product_view, flags = {'no-writes'}}
redis.register_function{function_name = 'coverage_facts', callback = coverage_facts, flags = {'no-writes'}}
redis.register_function{function_name = 'ticket_list', callback = ticket_list, flags = {'no-writes'}}
redis.register_function('ticket_mark', ticket_mark)
redis.register_function('outbox_dead', outbox_dead)
redis.register_function('archive_remove', archive_remove)
redis.register_function{function_name = 'archive_collect', callback = archive_collect, flags = {'no-writes'}}
redis.register_function{function_name = 'pack_collect', callback = pack_collect, flags = {'no-writes'}}
redis.register_function('ticket_pack', ticket_pack)
redis.register_function('ticket_unpack', ticket_unpack)
redis.register_function{function_name = 'check_tickets', callback = check_tickets, flags = {'no-writes'}}
redis.register_function{function_name = 'check_index', callback = check_index, flags = {'no-writes'}}
redis.register_function{function_name = 'check_invoices', callback = check_invoices, flags = {'no-writes'}}
redis.register_function{function_name = 'sav_version', callback = version, flags = {'no-writes'}}
