// The single-page app of the browser test: Apollo Client 4 against the API on another origin,
// bundled by esbuild (apollo.mjs). It signs in (a mutation), reads the viewer (a query), and
// receives the notification of a second sign-in over a websocket (a subscription).
import { ApolloClient, ApolloLink, HttpLink, InMemoryCache, gql } from '@apollo/client';
import { GraphQLWsLink } from '@apollo/client/link/subscriptions';
import { getMainDefinition } from '@apollo/client/utilities';
import { createClient } from 'graphql-ws';

const LOG_IN = gql`mutation($e: String!, $p: String!) { logIn(input: {email: $e, password: $p}) { token } }`;
const VIEWER = gql`{ viewer { id displayName } }`;
const NOTIFICATIONS = gql`subscription { notificationReceived { cursor notification { kind } } }`;

window.scenario = async (api, email, password) => {
  const result = {};
  let token = null;
  const http = new HttpLink({
    uri: api,
    fetch: (uri, options) => {
      const headers = { ...(options.headers || {}) };
      if (token) headers.authorization = `Bearer ${token}`;
      return fetch(uri, { ...options, headers });
    },
  });
  const ws = new GraphQLWsLink(
    createClient({
      url: api.replace(/^http/, 'ws'),
      connectionParams: () => ({ authorization: `Bearer ${token}` }),
    }),
  );
  const link = ApolloLink.split(
    ({ query }) => {
      const definition = getMainDefinition(query);
      return definition.kind === 'OperationDefinition' && definition.operation === 'subscription';
    },
    ws,
    http,
  );
  const client = new ApolloClient({ link, cache: new InMemoryCache() });
  const signedIn = await client.mutate({ mutation: LOG_IN, variables: { e: email, p: password } });
  token = signedIn.data.logIn.token;
  result.mutation = Boolean(token);
  const viewer = await client.query({ query: VIEWER, fetchPolicy: 'network-only' });
  result.query = viewer.data.viewer;
  result.subscription = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('no event within 20 s')), 20000);
    let again = null;
    const subscription = client.subscribe({ query: NOTIFICATIONS }).subscribe({
      next: (event) => {
        clearTimeout(timer);
        clearInterval(again);
        subscription.unsubscribe();
        resolve(event.data.notificationReceived.notification.kind);
      },
      error: (error) => reject(error),
    });
    // A sign-in notifies the viewer: repeated until the socket is up and one arrives.
    again = setInterval(
      () => client.mutate({ mutation: LOG_IN, variables: { e: email, p: password } }),
      1000,
    );
    setTimeout(() => clearInterval(again), 20000);
  });
  return result;
};
