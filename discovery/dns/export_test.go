package dns

// DialContext is the dial of the default resolver, for the tests' resolvers.
var DialContext = dialContext
