-- Departure, progress and the closing of a movement read its assignments on every call: without
-- this, each reads the whole table (a cost growing with every case ever planned). Also serves the
-- foreign key to vehicles.
CREATE INDEX assignments_movement ON assignments (movement_id, vehicle_id);
-- Planning reads the cases of a route and a day.
CREATE INDEX cases_route_travel ON cases (route_id, planned_travel_date);
