-- One database per service: each owns its data. Run once, by the postgres
-- image's entrypoint, when the data volume is empty.
CREATE DATABASE users;
CREATE DATABASE products;
CREATE DATABASE payments;
CREATE DATABASE orders;
