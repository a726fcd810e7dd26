-- wrk -s wrk-announce.lua http://127.0.0.1:PORT   (env IH = percent-encoded 20-byte info_hash)
-- Every request announces a random peer (random peer_id and port) in one swarm, so the swarm grows
-- to tens of thousands of peers and each reply carries 50 compact peers.
local ih = os.getenv("IH")
math.randomseed(os.time())
request = function()
  local port = math.random(1024, 65535)
  local pid = string.format("-WK0001-%012d", math.random(0, 999999999999))
  local path = "/announce?info_hash=" .. ih .. "&peer_id=" .. pid .. "&port=" .. port ..
     "&uploaded=0&downloaded=0&left=" .. math.random(0, 1) .. "&compact=1&numwant=50"
  return wrk.format("GET", path)
end
