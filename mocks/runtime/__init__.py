"""What every mock runs on: the host and control API, the HTTP and SOAP/MTOM servers, TLS, faults."""
