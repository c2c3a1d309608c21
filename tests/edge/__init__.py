"""The edge: real Kamailio and real sipp on loopback, no mocks."""
