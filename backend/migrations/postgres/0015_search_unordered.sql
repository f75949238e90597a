-- RA search stops at one more than a page in each way it matches and sorts only those (issue
-- 16), so it no longer reads people in name order: the index 0013 made for that only slowed
-- every write to `users`.
DROP INDEX users_by_name;
