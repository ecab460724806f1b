-- The county office that answers for the scheme (县防贫办), as every
-- printed village notice names it: where and how villagers object.
CREATE TABLE county_offices (
    county_code TEXT PRIMARY KEY REFERENCES counties (county_code),
    office_name TEXT NOT NULL CHECK (office_name <> ''),
    address TEXT NOT NULL CHECK (address <> ''),
    phone TEXT NOT NULL CHECK (phone <> ''),
    updated_at TEXT NOT NULL
);
