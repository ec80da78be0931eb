-- Take the pair's head event for one run (see try_claim in the prelude).
-- Own ARGV: 1 pid, 2 token, 3 alone (0/1: the run has its worker process to itself).
local pid, token, alone = arg(1), arg(2), arg(3)
return try_claim(pid, token, alone)
